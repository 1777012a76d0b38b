# The MPI communication plugin (--enable-mpi): a libtool module in its own folder,
# $(pkglibdir)/comm, with its manifest in $(pkgdatadir)/plugins/comm/, so that the
# registry of compute plugins never sees it (the core finds it by core/comm/comm-find.c).
EXTRA_DIST += plugins/comm-mpi/comm-mpi.json.in
if BUILD_COMM_MPI
commdir = $(pkglibdir)/comm
comm_LTLIBRARIES = plugins/comm-mpi/comm-mpi.la
plugins_comm_mpi_comm_mpi_la_SOURCES = plugins/comm-mpi/plugin.c
plugins_comm_mpi_comm_mpi_la_CFLAGS = $(plugin_cflags) $(MPI_CFLAGS)
plugins_comm_mpi_comm_mpi_la_LIBADD = $(MPI_LIBS)
plugins_comm_mpi_comm_mpi_la_LDFLAGS = -module -avoid-version -shared -no-undefined \
	-rpath $(commdir) -export-symbols-regex '^slm_comm_entry$$'

commmanifestdir = $(pkgdatadir)/plugins/comm
commmanifest_DATA = manifests/comm/comm-mpi.json
noinst_DATA += manifests/uninstalled/comm/comm-mpi.json
CLEANFILES += manifests/comm/comm-mpi.json manifests/uninstalled/comm/comm-mpi.json

manifests/comm/comm-mpi.json: plugins/comm-mpi/comm-mpi.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) manifests/comm && \
	$(manifest_subst) -e "s|[@]PLUGIN_DIR[@]|$$(realpath -m --relative-to='$(commmanifestdir)' '$(commdir)' \
		2>/dev/null || echo '$(commdir)')|g" $< > $@.tmp && mv -f $@.tmp $@
manifests/uninstalled/comm/comm-mpi.json: plugins/comm-mpi/comm-mpi.json.in Makefile
	$(AM_V_GEN)$(MKDIR_P) manifests/uninstalled/comm && \
	$(manifest_subst) -e 's|[@]PLUGIN_DIR[@]|$(abs_top_builddir)/plugins/comm-mpi/.libs|g' \
		$< > $@.tmp && mv -f $@.tmp $@
endif
