# Quantizer plugins: one library (and one manifest) per block type, all built
# from the shared sources here; -DQUANT_TYPE picks the type plugin.c describes.
# Contraction into FMA would change rounding and so the bytes ggml produces.
quantizer_cflags = $(plugin_cflags) -ffp-contract=off
quantizer_common = plugins/quantizers/quant.h plugins/quantizers/common.c \
	plugins/quantizers/plugin.c
quantizer_legacy_sources = $(quantizer_common) plugins/quantizers/search.c \
	plugins/quantizers/legacy.c
quantizer_k_sources = $(quantizer_common) plugins/quantizers/search.c \
	plugins/quantizers/kquants.c
quantizer_nf4_sources = $(quantizer_common) plugins/quantizers/nf4.c

quantizer_ldflags = $(plugin_ldflags) -export-symbols-regex '^slm_plugin_entry$$'
quantizer_names = q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k nf4
# Where manifests/local.mk finds each built library (automake never reads these).
$(foreach q,$(quantizer_names),$(eval plugin_builddir_quantizer_$(q) = plugins/quantizers))

# Automake writes a library's rules only from lines it reads literally (and needs
# -module in its LDFLAGS to accept the name), so these blocks cannot be generated.
plugin_LTLIBRARIES += plugins/quantizers/quantizer-q4_0.la
plugins_quantizers_quantizer_q4_0_la_SOURCES = $(quantizer_legacy_sources)
plugins_quantizers_quantizer_q4_0_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=2
plugins_quantizers_quantizer_q4_0_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q4_0_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q4_1.la
plugins_quantizers_quantizer_q4_1_la_SOURCES = $(quantizer_legacy_sources)
plugins_quantizers_quantizer_q4_1_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=3
plugins_quantizers_quantizer_q4_1_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q4_1_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q5_0.la
plugins_quantizers_quantizer_q5_0_la_SOURCES = $(quantizer_legacy_sources)
plugins_quantizers_quantizer_q5_0_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=6
plugins_quantizers_quantizer_q5_0_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q5_0_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q5_1.la
plugins_quantizers_quantizer_q5_1_la_SOURCES = $(quantizer_legacy_sources)
plugins_quantizers_quantizer_q5_1_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=7
plugins_quantizers_quantizer_q5_1_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q5_1_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q8_0.la
plugins_quantizers_quantizer_q8_0_la_SOURCES = $(quantizer_legacy_sources)
plugins_quantizers_quantizer_q8_0_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=8
plugins_quantizers_quantizer_q8_0_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q8_0_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q4_k.la
plugins_quantizers_quantizer_q4_k_la_SOURCES = $(quantizer_k_sources)
plugins_quantizers_quantizer_q4_k_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=12
plugins_quantizers_quantizer_q4_k_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q4_k_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q5_k.la
plugins_quantizers_quantizer_q5_k_la_SOURCES = $(quantizer_k_sources)
plugins_quantizers_quantizer_q5_k_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=13
plugins_quantizers_quantizer_q5_k_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q5_k_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-q6_k.la
plugins_quantizers_quantizer_q6_k_la_SOURCES = $(quantizer_k_sources)
plugins_quantizers_quantizer_q6_k_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=14
plugins_quantizers_quantizer_q6_k_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_q6_k_la_LIBADD = -lm

plugin_LTLIBRARIES += plugins/quantizers/quantizer-nf4.la
plugins_quantizers_quantizer_nf4_la_SOURCES = $(quantizer_nf4_sources)
plugins_quantizers_quantizer_nf4_la_CFLAGS = $(quantizer_cflags) -DQUANT_TYPE=1024
plugins_quantizers_quantizer_nf4_la_LDFLAGS = $(quantizer_ldflags)
plugins_quantizers_quantizer_nf4_la_LIBADD = -lm
