# blktrack top-level build.
#
#   make              libblktrack, blktrack, blktrack-dump
#   make kmod         kmod/blktrack.ko for KDIR (default: the running kernel)
#   make kmod-all     blktrack.ko for every installed Debian kernel, in build/kmod-KVER/
#   make check        unit tests, then the VM tests (one boot, then power cuts and
#                     reboots: tests/vm/reboot.sh) on every supported kernel
#   make soak         a stress test (SOAK_TEST, 0990-stress; or 0991) for STRESS_SECS (600)
#   make demo         boot a VM and show the main job
#   make fuzz         libFuzzer on each parser, FUZZ_SECONDS (60) each (not in check)
#   make deps         install the Debian packages needed (idempotent)

CC       ?= gcc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -D_GNU_SOURCE \
	    -Iinclude/uapi -Ilib -fvisibility=hidden
LDFLAGS  ?=
PREFIX   ?= /usr/local
VERSION  ?= 0.1

KVER     ?= $(shell uname -r)
KDIR     ?= /lib/modules/$(KVER)/build

B        ?= build
# Test hooks (BLKTRACK_TEST_* variables: crash points, failing FITHAW or
# COMMIT) are compiled into build/, which the tests run; `make install`
# builds apart, in $(B)/release, without them.
TEST_HOOKS ?= 1
ifeq ($(TEST_HOOKS),1)
CFLAGS   += -DBLKTRACK_TEST_HOOKS
endif
LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
LIB_LIBS := $(shell pkg-config --libs blkid libkmod json-c 2>/dev/null)
# Debian's libroaring-dev has no .pc file.
ROARING_LIBS := $(shell pkg-config --libs roaring 2>/dev/null || echo -lroaring)
XXHASH_LIBS := $(shell pkg-config --libs libxxhash 2>/dev/null || echo -lxxhash)
LIB_LIBS += $(ROARING_LIBS) $(XXHASH_LIBS)
# zstd for the backup stream format (lib/bfile.c, also linked into blktrack-dump).
ZSTD_LIBS := $(shell pkg-config --libs libzstd 2>/dev/null || echo -lzstd)
LIB_LIBS += $(ZSTD_LIBS) -pthread
JSON_LIBS := $(shell pkg-config --libs json-c 2>/dev/null)
BLKID_LIBS := $(shell pkg-config --libs blkid 2>/dev/null)
LIBSO    := $(B)/libblktrack.so.1
CLI_SRC  := $(wildcard userspace/*.c)
DUMP_SRC := $(wildcard tools/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
# Library sources the unit tests link (the others are #included by a test).
UNIT_LIB_SRC := lib/blockset.c lib/repo.c
UNIT_LIB_SRC += lib/bfile.c lib/writers.c lib/target.c lib/blockhash.c lib/statefile.c lib/fdio.c lib/readq.c lib/vollock.c lib/volid.c
# The fuzz entry points: the unit tests replay every corpus file through them.
UNIT_LIB_SRC += tests/fuzz/targets.c
VMPROG_SRC := $(wildcard tests/vm/progs/*.c)

all: $(B)/blktrack $(B)/blktrack-dump

$(B)/%.o: %.c $(wildcard include/uapi/linux/*.h lib/*.h kmod/btmap*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(LIBSO): $(LIB_OBJ) lib/libblktrack.sym
	$(CC) -shared -Wl,-soname,libblktrack.so.1 -Wl,--version-script=lib/libblktrack.sym \
		-o $@ $(LIB_OBJ) $(LDFLAGS) $(LIB_LIBS)
	ln -sf libblktrack.so.1 $(B)/libblktrack.so

$(B)/blktrack: $(CLI_SRC:%.c=$(B)/%.o) $(LIBSO)
	$(CC) -o $@ $(filter %.o,$^) -L$(B) -lblktrack -Wl,-rpath,'$$ORIGIN' $(LDFLAGS) $(JSON_LIBS)

$(B)/blktrack-dump: $(DUMP_SRC:%.c=$(B)/%.o) $(B)/lib/bfile.o $(LIBSO)
	$(CC) -o $@ $(filter %.o,$^) -L$(B) -lblktrack -Wl,-rpath,'$$ORIGIN' $(LDFLAGS) \
		$(JSON_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS)

# Small C programs the VM tests run in the guest (ioctl errno checks...).
vmprogs: $(VMPROG_SRC:tests/vm/progs/%.c=$(B)/vmprogs/%)
$(B)/vmprogs/%: tests/vm/progs/%.c include/uapi/linux/blktrack.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -static -o $@ $< -lpthread
# The evidence report reads the repository (blktrack_repo_json()): linked too.
$(B)/vmprogs/evidence: tests/vm/progs/evidence.c lib/libblktrack.h $(LIBSO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(B) -lblktrack -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS) $(JSON_LIBS)
# The stress driver calls the library (blktrack_backup()): linked to it.
$(B)/vmprogs/stress-backup: tests/vm/progs/stress-backup.c lib/libblktrack.h $(LIBSO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(B) -lblktrack -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS)

# The ABI header must compile alone as strict C90.
abi-check:
	printf '#include <linux/blktrack.h>\n' | \
		$(CC) -std=c90 -pedantic -Wall -Wextra -Werror -fsyntax-only -Iinclude/uapi -x c -

# ---- kernel module ---------------------------------------------------------
kmod:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

kmod-all:
	scripts/build-kmod-all.sh

kmod-clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# ---- tests -----------------------------------------------------------------
UNIT_CFLAGS := $(CFLAGS) -DBTMAP_USERSPACE -Ikmod -Itests/fuzz -pthread
$(B)/unit-tests: $(UNIT_SRC) $(wildcard tests/fuzz/*.[ch]) kmod/btmap.c $(wildcard kmod/btmap*.h) $(wildcard include/uapi/linux/*.h) $(wildcard lib/*.[ch])
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ $(UNIT_SRC) $(UNIT_LIB_SRC) kmod/btmap.c -lcriterion -lurcu -lurcu-common \
		$(JSON_LIBS) $(ROARING_LIBS) $(XXHASH_LIBS) $(ZSTD_LIBS) $(BLKID_LIBS)

# Tests of the library's whole operations (blktrack_restore()...), linked
# with every library source: tests/unit/lib/.
UNIT_WHOLE_SRC := $(wildcard tests/unit/lib/*.c)
$(B)/unit-tests-lib: $(UNIT_WHOLE_SRC) $(LIB_SRC) $(wildcard lib/*.h include/uapi/linux/*.h)
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ $(UNIT_WHOLE_SRC) $(LIB_SRC) -lcriterion $(LIB_LIBS)

unit: abi-check $(B)/unit-tests $(B)/unit-tests-lib
	$(B)/unit-tests --jobs 2
	$(B)/unit-tests-lib --jobs 2

# The unit tests under ASan/UBSan: a leaf freed before its grace period shows
# as a use after free. Criterion itself leaks a little: no leak check.
$(B)/unit-tests-asan: $(UNIT_SRC) $(wildcard tests/fuzz/*.[ch]) kmod/btmap.c $(wildcard kmod/btmap*.h) $(wildcard include/uapi/linux/*.h) $(wildcard lib/*.[ch])
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-o $@ $(UNIT_SRC) $(UNIT_LIB_SRC) kmod/btmap.c -lcriterion -lurcu -lurcu-common \
		$(JSON_LIBS) $(ROARING_LIBS) $(XXHASH_LIBS) $(ZSTD_LIBS) $(BLKID_LIBS)

unit-asan: $(B)/unit-tests-asan
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 $(B)/unit-tests-asan --jobs 2

# libFuzzer on the parsers (doc/RELIABILITY.md, "Fuzzing"): like a benchmark,
# not part of check. Each target starts from tests/fuzz/corpus/NAME/; what it
# adds goes to build/fuzz/NAME/, crashers to build/fuzz/NAME-crash-*
# (minimize them with -minimize_crash=1, name them RESULT.what and commit).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_TARGETS := bfile catalog blockset blockhash state
FUZZ_FLAGS   := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude/uapi -Ilib -Itests/fuzz \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRC := tests/fuzz/targets.c lib/bfile.c lib/blockset.c lib/blockhash.c \
		lib/repo.c lib/statefile.c lib/fdio.c
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRC) $(wildcard tests/fuzz/*.h lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(JSON_LIBS) $(ROARING_LIBS) \
		$(XXHASH_LIBS) $(ZSTD_LIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(B)/fuzz/$$t; \
		echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
		UBSAN_OPTIONS=print_stacktrace=1 $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=$(B)/fuzz/$$t- \
			$(B)/fuzz/$$t tests/fuzz/corpus/$$t 2>$(B)/fuzz/$$t.log || { \
			tail -n 60 $(B)/fuzz/$$t.log; exit 1; }; \
		grep -E '^(stat::|Done)' $(B)/fuzz/$$t.log; \
	done

# Userspace micro-benchmark of the map: bytes and ns per mark on a 1 TiB volume.
$(B)/bench-map: tests/bench/bench_map.c kmod/btmap.c $(wildcard kmod/btmap*.h)
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ tests/bench/bench_map.c kmod/btmap.c -lurcu -lurcu-common

bench-map: $(B)/bench-map
	$(B)/bench-map

# Userspace micro-benchmark of the backup stream format: host CPU per byte.
$(B)/bench-bfile: tests/bench/bench_bfile.c lib/bfile.c lib/bfile.h
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ tests/bench/bench_bfile.c lib/bfile.c $(XXHASH_LIBS) $(ZSTD_LIBS)

bench-bfile: $(B)/bench-bfile
	$(B)/bench-bfile

# Userspace benchmark of growth (issue 5): delta composition and restore
# against the number of extents and the chain length; the whole library,
# linked statically (repo.c and blockset.c internals are called directly).
$(B)/bench-growth: tests/bench/bench_growth.c $(LIB_SRC) $(wildcard lib/*.h)
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ tests/bench/bench_growth.c $(LIB_SRC) $(LIB_LIBS)

bench-growth: $(B)/bench-growth
	$(B)/bench-growth

# Dependencies first, then a fresh make: LIB_LIBS is computed by pkg-config
# when the Makefile is parsed, so the build must start after install-deps.
check:
	scripts/install-deps.sh
	$(MAKE) all vmprogs unit
	tests/install/check-install.sh
	tests/vm/run.sh
	tests/vm/reboot.sh

# The stress test for longer (not part of check): STRESS_SECS of fio, backup
# cycles and attach/detach on each kernel, in rounds of 30 s each ending with
# a bit-exact restore. Under TCG a round takes about three times its length.
soak: STRESS_SECS ?= 600
soak: SOAK_TEST ?= 0990
soak:
	scripts/install-deps.sh
	$(MAKE) all vmprogs
	STRESS_SECS=$(STRESS_SECS) BLKTRACK_TEST_TIMEOUT=$$(($(STRESS_SECS) * 6 + 300)) \
		VM_TIMEOUT=$$(($(STRESS_SECS) * 6 + 600)) \
		tests/vm/run.sh $(if $(SOAK_KERNEL),--kernel $(SOAK_KERNEL)) $(SOAK_TEST)

# Benchmarks in the VM (not part of check): figures for doc/BENCHMARKS.md.
bench:
	scripts/install-deps.sh
	$(MAKE) all vmprogs
	tests/vm/run.sh --bench

demo:
	scripts/install-deps.sh
	$(MAKE) all
	tests/vm/demo.sh

deps:
	scripts/install-deps.sh

$(B)/libblktrack.pc: lib/libblktrack.pc.in
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< >$@

REL := $(B)/release
install:
	$(MAKE) B=$(REL) TEST_HOOKS=0 all $(REL)/libblktrack.pc
	install -D -m 0755 $(REL)/blktrack $(DESTDIR)$(PREFIX)/sbin/blktrack
	install -D -m 0755 $(REL)/blktrack-dump $(DESTDIR)$(PREFIX)/sbin/blktrack-dump
	install -D -m 0755 $(REL)/libblktrack.so.1 $(DESTDIR)$(PREFIX)/lib/libblktrack.so.1
	ln -sf libblktrack.so.1 $(DESTDIR)$(PREFIX)/lib/libblktrack.so
	install -D -m 0644 lib/libblktrack.h $(DESTDIR)$(PREFIX)/include/libblktrack.h
	install -D -m 0644 include/uapi/linux/blktrack.h $(DESTDIR)$(PREFIX)/include/linux/blktrack.h
	install -D -m 0644 $(REL)/libblktrack.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/libblktrack.pc
	install -D -m 0644 doc/blktrack.8 $(DESTDIR)$(PREFIX)/share/man/man8/blktrack.8
	install -D -m 0644 doc/blktrack-dump.8 $(DESTDIR)$(PREFIX)/share/man/man8/blktrack-dump.8

clean:
	rm -rf $(B)
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null


.PHONY: fuzz fuzz-build bench bench-map bench-bfile bench-growth all abi-check kmod kmod-all kmod-clean unit unit-asan check soak demo deps install clean vmprogs
