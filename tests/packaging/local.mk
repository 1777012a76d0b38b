# Packaging tests: manifest schema, exported symbols, install layout, Debian packages.
# They are scripts; what they need from configure reaches them through the environment.
TESTS += \
	tests/packaging/manifest-schema.sh \
	tests/packaging/exported-symbols.sh \
	tests/packaging/install-layout.sh \
	tests/packaging/debian-packages.sh
EXTRA_DIST += \
	tests/packaging/debian-packages.sh \
	tests/packaging/manifest-schema.sh \
	tests/packaging/exported-symbols.sh \
	tests/packaging/install-layout.sh \
	tests/packaging/validate-manifests.py \
	tests/packaging/public-functions.py \
	tests/packaging/manifests/invalid/expected.txt \
	$(packaging_valid_manifests) \
	$(packaging_invalid_manifests)
packaging_valid_manifests = \
	tests/packaging/manifests/valid/backend.json \
	tests/packaging/manifests/valid/format.json \
	tests/packaging/manifests/valid/format-folders.json \
	tests/packaging/manifests/valid/newer-minor-extra-key.json \
	tests/packaging/manifests/valid/quantizer.json \
	tests/packaging/manifests/valid/trainer.json \
	tests/packaging/manifests/valid/trainer-methods.json
packaging_invalid_manifests = \
	tests/packaging/manifests/invalid/backend-unknown-op.json \
	tests/packaging/manifests/invalid/backend-without-ops.json \
	tests/packaging/manifests/invalid/bad-name.json \
	tests/packaging/manifests/invalid/duplicate-key.json \
	tests/packaging/manifests/invalid/format-extension-without-dot.json \
	tests/packaging/manifests/invalid/format-folders-before-1.2.json \
	tests/packaging/manifests/invalid/format-folders-not-boolean.json \
	tests/packaging/manifests/invalid/major-version-2.json \
	tests/packaging/manifests/invalid/missing-library-path.json \
	tests/packaging/manifests/invalid/missing-name.json \
	tests/packaging/manifests/invalid/missing-provides.json \
	tests/packaging/manifests/invalid/not-json.json \
	tests/packaging/manifests/invalid/quantizer-fallback-in-1.0.json \
	tests/packaging/manifests/invalid/quantizer-fallback-not-a-type.json \
	tests/packaging/manifests/invalid/quantizer-zero-block.json \
	tests/packaging/manifests/invalid/trainer-method-bad-name.json \
	tests/packaging/manifests/invalid/trainer-method-object-in-1.2.json \
	tests/packaging/manifests/invalid/trainer-method-twice.json \
	tests/packaging/manifests/invalid/trainer-method-without-description.json \
	tests/packaging/manifests/invalid/trainer-without-methods.json \
	tests/packaging/manifests/invalid/unknown-key-in-1.0.json \
	tests/packaging/manifests/invalid/unknown-kind.json \
	tests/packaging/manifests/invalid/wrong-type-abi-version.json \
	tests/packaging/manifests/invalid/wrong-type-priority.json \
	tests/packaging/manifests/invalid/wrong-type-requires.json

# The install-layout test installs this tree into a DESTDIR and compares it with
# the directories configure chose.
AM_TESTS_ENVIRONMENT += \
	PYTHON3='$(PYTHON3)'; export PYTHON3; \
	MAKE='$(MAKE)'; export MAKE; \
	CC='$(CC)'; export CC; \
	slm_version='$(PACKAGE_VERSION)'; export slm_version; \
	slm_bindir='$(bindir)'; export slm_bindir; \
	slm_libdir='$(libdir)'; export slm_libdir; \
	slm_includedir='$(includedir)'; export slm_includedir; \
	slm_mandir='$(mandir)'; export slm_mandir; \
	slm_pkglibdir='$(pkglibdir)'; export slm_pkglibdir; \
	slm_pkgdatadir='$(pkgdatadir)'; export slm_pkgdatadir;
