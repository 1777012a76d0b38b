# Plugin SDK: installed plugin-facing headers, slmops-plugin.pc, template, conformance tool.
slmopsinclude_HEADERS += \
	sdk/include/slmops/plugin.h \
	sdk/include/slmops/plugin-backend.h \
	sdk/include/slmops/plugin-quantizer.h \
	sdk/include/slmops/plugin-trainer.h \
	sdk/include/slmops/plugin-format.h
