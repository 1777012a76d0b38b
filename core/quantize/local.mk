# Row conversions between f32 and block types (slmops/quantize.h), through the
# quantizer plugins the registry finds.
libslmops_la_SOURCES += core/quantize/quantize.c
slmopsinclude_HEADERS += core/include/slmops/quantize.h
