# Tokenizers: SentencePiece-style BPE, byte-level BPE (PCRE2 pre-tokenizers) and
# WordPiece, built from a model file's tokenizer.* keys.
libslmops_la_SOURCES += \
	core/tokenizer/tokenizer-internal.h \
	core/tokenizer/tokenizer.c \
	core/tokenizer/spm.c \
	core/tokenizer/bpe.c \
	core/tokenizer/wpm.c \
	core/tokenizer/decode.c
libslmops_la_LIBADD += $(PCRE2_LIBS) $(UTF8PROC_LIBS)
slmopsinclude_HEADERS += core/include/slmops/tokenizer.h
