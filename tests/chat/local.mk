# tests/chat: the Jinja engine that renders chat templates, against Python's jinja2,
# and `slmops chat` driven through pipes and signals.
check_PROGRAMS += tests/chat/test-jinja tests/chat/chat-render
TESTS += tests/chat/test-jinja tests/chat/chat-templates.sh tests/chat/chat-session.sh
tests_chat_test_jinja_SOURCES = tests/chat/test-jinja.c
tests_chat_test_jinja_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS)
tests_chat_test_jinja_LDADD = $(test_libs) $(JANSSON_LIBS)
# ... and again with the engine compiled in under AddressSanitizer and UBSan: the
# corpus, the error paths and the hostile templates must not read or leak a byte.
jinja_asan_flags = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check_PROGRAMS += tests/chat/test-jinja-asan
TESTS += tests/chat/test-jinja-asan
tests_chat_test_jinja_asan_SOURCES = tests/chat/test-jinja.c $(chat_engine_sources) \
	core/util/error.c
tests_chat_test_jinja_asan_CFLAGS = $(test_cflags) $(JANSSON_CFLAGS) $(UTF8PROC_CFLAGS) \
	$(jinja_asan_flags)
tests_chat_test_jinja_asan_LDFLAGS = $(jinja_asan_flags)
tests_chat_test_jinja_asan_LDADD = $(test_libs) $(JANSSON_LIBS) $(UTF8PROC_LIBS) -lm

# A stand-in for fixtures/chat-templates/render.py, driven by chat-templates.sh.
tests_chat_chat_render_SOURCES = tests/chat/chat-render.c
tests_chat_chat_render_LDADD = libslmops.la
EXTRA_DIST += \
	tests/chat/chat-templates.sh \
	tests/chat/chat-session.sh \
	tests/chat/jinja-cases.json \
	tests/chat/make-cases.py
