# Chat templates: detecting a model's template and formatting conversations.
libslmops_la_SOURCES += core/chat/chat.c
slmopsinclude_HEADERS += core/include/slmops/chat.h
