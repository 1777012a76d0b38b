# Manifests of in-tree plugins: manifests/NAME.json.in -> installed with the
# library directory substituted, and an uninstalled copy for the build tree's tests
# (tests point SLMOPS_PLUGIN_PATH at manifests/uninstalled).
# Only plugins this configuration builds get manifests.

manifest_sources = \
	manifests/cpu-x86-64.json.in \
	manifests/cpu-avx2.json.in \
	manifests/cpu-avx512.json.in \
	manifests/cpu-avx512-vnni.json.in \
	manifests/cpu-generic.json.in \
	manifests/format-gguf.json.in \
	manifests/format-llama2c.json.in \
	manifests/format-sentencepiece.json.in \
	manifests/format-safetensors.json.in \
	manifests/quantizer-q4_0.json.in \
	manifests/quantizer-q4_1.json.in \
	manifests/quantizer-q5_0.json.in \
	manifests/quantizer-q5_1.json.in \
	manifests/quantizer-q8_0.json.in \
	manifests/quantizer-q4_k.json.in \
	manifests/quantizer-q5_k.json.in \
	manifests/quantizer-q6_k.json.in \
	manifests/quantizer-nf4.json.in \
	manifests/trainer-full.json.in \
	manifests/trainer-lora.json.in \
	manifests/trainer-distill.json.in \
	manifests/backend-vulkan.json.in \
	manifests/backend-opencl.json.in \
	manifests/backend-cuda.json.in
EXTRA_DIST += $(manifest_sources)

manifest_built = manifests/format-gguf.json
manifest_built += manifests/format-safetensors.json
manifest_built += manifests/format-llama2c.json manifests/format-sentencepiece.json
manifest_uninstalled = manifests/uninstalled/format-gguf.json
manifest_uninstalled += manifests/uninstalled/format-safetensors.json
manifest_uninstalled += manifests/uninstalled/format-llama2c.json \
	manifests/uninstalled/format-sentencepiece.json
# Quantizers: one manifest per block type (libraries in plugins/quantizers).
manifest_built += \
	manifests/quantizer-q4_0.json \
	manifests/quantizer-q4_1.json \
	manifests/quantizer-q5_0.json \
	manifests/quantizer-q5_1.json \
	manifests/quantizer-q8_0.json \
	manifests/quantizer-q4_k.json \
	manifests/quantizer-q5_k.json \
	manifests/quantizer-q6_k.json \
	manifests/quantizer-nf4.json
manifest_uninstalled += \
	manifests/uninstalled/quantizer-q4_0.json \
	manifests/uninstalled/quantizer-q4_1.json \
	manifests/uninstalled/quantizer-q5_0.json \
	manifests/uninstalled/quantizer-q5_1.json \
	manifests/uninstalled/quantizer-q8_0.json \
	manifests/uninstalled/quantizer-q4_k.json \
	manifests/uninstalled/quantizer-q5_k.json \
	manifests/uninstalled/quantizer-q6_k.json \
	manifests/uninstalled/quantizer-nf4.json
# Trainers (plugins/trainer-*): the methods of the train job.
manifest_built += manifests/trainer-full.json manifests/trainer-lora.json \
	manifests/trainer-distill.json
manifest_uninstalled += manifests/uninstalled/trainer-full.json \
	manifests/uninstalled/trainer-lora.json manifests/uninstalled/trainer-distill.json
if HOST_X86_64
manifest_built += manifests/cpu-x86-64.json
manifest_uninstalled += manifests/uninstalled/cpu-x86-64.json
if BUILD_CPU_AVX2
manifest_built += manifests/cpu-avx2.json
manifest_uninstalled += manifests/uninstalled/cpu-avx2.json
endif
if BUILD_CPU_AVX512
manifest_built += manifests/cpu-avx512.json
manifest_uninstalled += manifests/uninstalled/cpu-avx512.json
endif
if BUILD_CPU_AVX512_VNNI
manifest_built += manifests/cpu-avx512-vnni.json
manifest_uninstalled += manifests/uninstalled/cpu-avx512-vnni.json
endif
else
manifest_built += manifests/cpu-generic.json
manifest_uninstalled += manifests/uninstalled/cpu-generic.json
endif

if BUILD_BACKEND_VULKAN
manifest_built += manifests/backend-vulkan.json
manifest_uninstalled += manifests/uninstalled/backend-vulkan.json
endif
if BUILD_BACKEND_CUDA
manifest_built += manifests/backend-cuda.json
manifest_uninstalled += manifests/uninstalled/backend-cuda.json
endif

if BUILD_BACKEND_OPENCL
manifest_built += manifests/backend-opencl.json
manifest_uninstalled += manifests/uninstalled/backend-opencl.json
endif

# llama-quantize's mixes, as data the quantize job reads from the same folders
# (docs/quantization.md, "Mixes"); not a manifest, hence not *.json.
mix_sources = manifests/llama-quantize.mixes
EXTRA_DIST += $(mix_sources)
manifest_uninstalled += manifests/uninstalled/llama-quantize.mixes

manifest_DATA += $(manifest_built) $(mix_sources)
# Built by `all` so that tests and developers can run from the build tree.
noinst_DATA = $(manifest_uninstalled)
CLEANFILES += $(manifest_built) $(manifest_uninstalled)

# Installed manifests name the installed library; uninstalled ones the built one,
# in the folder plugin_builddir_NAME names (dashes as underscores; default the CPU
# backend's), set by the plugin's own fragment.
manifest_subst = $(SED) -e 's|[@]PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'

manifests/uninstalled/%.json: manifests/%.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) manifests/uninstalled && \
	$(manifest_subst) -e 's|[@]PLUGIN_DIR[@]|$(abs_top_builddir)/$(or $(plugin_builddir_$(subst -,_,$*)),plugins/backend-cpu)/.libs|g' \
		$< > $@.tmp && mv -f $@.tmp $@

# Installed ones name it relative to the manifest's folder, so that an install
# moved as a whole (DESTDIR, a package unpacked into another root) still loads.
manifest_plugin_dir = $(shell realpath -m --relative-to='$(manifestdir)' '$(plugindir)' \
	2>/dev/null || echo '$(plugindir)')

manifests/%.json: manifests/%.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) manifests && \
	$(manifest_subst) -e 's|[@]PLUGIN_DIR[@]|$(manifest_plugin_dir)|g' $< > $@.tmp && mv -f $@.tmp $@

manifests/uninstalled/%.mixes: manifests/%.mixes
	$(AM_V_GEN)$(MKDIR_P) manifests/uninstalled && cp $< $@.tmp && mv -f $@.tmp $@
