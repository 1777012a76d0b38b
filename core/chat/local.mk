# Chat templates: a Jinja interpreter (lexer, parser, values, evaluator, filters,
# tests, methods, JSON) and the public API that renders conversations with it.
# (tests/chat builds the engine a second time, under AddressSanitizer.)
chat_engine_sources = \
	core/chat/jinja.h \
	core/chat/jinja-lexer.c \
	core/chat/jinja-parser.c \
	core/chat/jinja-value.c \
	core/chat/jinja-str.c \
	core/chat/jinja-eval.c \
	core/chat/jinja-ops.c \
	core/chat/jinja-filters.c \
	core/chat/jinja-tests.c \
	core/chat/jinja-methods.c \
	core/chat/jinja-json.c \
	core/chat/builtin.h \
	core/chat/builtin.c \
	core/chat/chat.c
libslmops_la_SOURCES += $(chat_engine_sources)
slmopsinclude_HEADERS += core/include/slmops/chat.h
