# blktrack top-level build.
#
#   make              libblktrack, blktrack, blktrack-dump
#   make kmod         kmod/blktrack.ko for KDIR (default: the running kernel)
#   make kmod-all     blktrack.ko for every selected Debian kernel, in build/kmod-KVER/
#   make check        unit tests, then the VM tests (one boot, then power cuts and
#                     reboots: tests/vm/reboot.sh) on the selected kernels: VM_FLAVOURS
#                     (cloud by default; rt, generic, all: scripts/kernels.sh)
#   make check-kernels the VM tests on Debian's PREEMPT_RT and generic kernels
#                     (VM_FLAVOURS="rt generic" here), unpacked first (not in check)
#   make kernels      unpack those kernels (scripts/install-kernels.sh, idempotent)
#   make check-debug  the VM tests on a debug kernel (lockdep, KASAN, kmemleak...),
#                     built from Debian's source once (not in check)
#   make soak         a stress test (SOAK_TEST, 0990-stress; or 0991) for STRESS_SECS (600)
#   make demo         boot a VM and show the main job
#   make check-layers the include rule of lib/ (doc/ARCHITECTURE.md; in make unit)
#   make fuzz         libFuzzer on each parser, FUZZ_SECONDS (60) each (not in check)
#   make deps         install the Debian packages needed (idempotent)
#   make install      the release build into DESTDIR/PREFIX (uninstall: removes it)
#   make deb          the Debian packages in build/deb/, then lintian (not in check)
#   make check-system Debian with systemd from a whole disk image, blktrack from
#                     its .debs, four boots with nobody typing (tests/system/)

CC       ?= gcc
CFLAGS   ?= -O2 -g
# CFLAGS as given (environment or default), before the additions below:
# `make release` passes them on and its make adds its own again.
USER_CFLAGS := $(CFLAGS)
# EXTRA_CFLAGS: added to every compile (the sanitizer and fuzzer builds).
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -D_GNU_SOURCE \
	    -Iinclude/uapi -Ilib -fvisibility=hidden -DBLKTRACK_VERSION='"$(VERSION)"' \
	    $(CPPFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  ?=
# The tools in build/ find build/libblktrack.so.1 beside them; the release
# build (make install) has no RPATH.
RPATH    ?= -Wl,-rpath,'$$ORIGIN'
PREFIX   ?= /usr/local
VERSION  ?= 0.1

KVER     ?= $(shell uname -r)
KDIR     ?= /lib/modules/$(KVER)/build
# The kernel flavours the VM tests and kmod-all take (scripts/kernels.sh):
# cloud, unless VM_FLAVOURS is given; rt and generic for check-kernels.
ifeq ($(origin VM_FLAVOURS),undefined)
CHECK_KERNELS_FLAVOURS := rt generic
else
CHECK_KERNELS_FLAVOURS := $(VM_FLAVOURS)
endif
export VM_FLAVOURS ?= cloud

B        ?= build
# Test hooks (BLKTRACK_TEST_* variables: crash points, failing FITHAW or
# COMMIT) are compiled into build/, which the tests run; `make install`
# builds apart, in $(B)/release, without them.
TEST_HOOKS ?= 1
ifeq ($(TEST_HOOKS),1)
CFLAGS   += -DBLKTRACK_TEST_HOOKS
endif
# lib/ in layers (doc/ARCHITECTURE.md, checked by `make check-layers`):
# core/, format/ and repo/ make the archive libbtbase.a, kernel/ and
# requester/ libbtengine.a; libblktrack.so is both archives whole. The CLI
# links the .so; blktrack-dump, the unit tests, the benchmarks and the
# fuzzers link the archives.
BASE_SRC   := $(wildcard lib/core/*.c lib/format/*.c lib/repo/*.c)
ENGINE_SRC := $(wildcard lib/kernel/*.c lib/requester/*.c)
LIB_HDR    := lib/libblktrack.h $(wildcard lib/*/*.h)
BASE_A     := $(B)/libbtbase.a
ENGINE_A   := $(B)/libbtengine.a
LIB_LIBS := $(shell pkg-config --libs blkid libkmod json-c 2>/dev/null)
# Debian's libroaring-dev has no .pc file.
ROARING_LIBS := $(shell pkg-config --libs roaring 2>/dev/null || echo -lroaring)
XXHASH_LIBS := $(shell pkg-config --libs libxxhash 2>/dev/null || echo -lxxhash)
LIB_LIBS += $(ROARING_LIBS) $(XXHASH_LIBS)
# zstd for the backup stream format (lib/format/bfile.c).
ZSTD_LIBS := $(shell pkg-config --libs libzstd 2>/dev/null || echo -lzstd)
LIB_LIBS += $(ZSTD_LIBS) -pthread
# libsodium for encrypted repositories (lib/repo/store_crypt.c).
SODIUM_LIBS := $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)
LIB_LIBS += $(SODIUM_LIBS)
JSON_LIBS := $(shell pkg-config --libs json-c 2>/dev/null)
BLKID_LIBS := $(shell pkg-config --libs blkid 2>/dev/null)
LIBSO    := $(B)/libblktrack.so.1
CLI_SRC  := $(wildcard userspace/*.c)
DUMP_SRC := $(wildcard tools/*.c)
UNIT_SRC := $(wildcard tests/unit/*.c)
# The fuzz entry points: the unit tests replay every corpus file through them.
FUZZ_ENTRY := tests/fuzz/targets.c
VMPROG_SRC := $(wildcard tests/vm/progs/*.c)

all: $(B)/blktrack $(B)/blktrack-dump

$(B)/%.o: %.c $(wildcard include/uapi/linux/*.h kmod/btmap*.h) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(BASE_A): $(BASE_SRC:%.c=$(B)/%.o)
	rm -f $@
	$(AR) rcs $@ $^

$(ENGINE_A): $(ENGINE_SRC:%.c=$(B)/%.o)
	rm -f $@
	$(AR) rcs $@ $^

$(LIBSO): $(ENGINE_A) $(BASE_A) lib/libblktrack.sym
	$(CC) -shared -Wl,-soname,libblktrack.so.1 -Wl,--version-script=lib/libblktrack.sym \
		-o $@ -Wl,--whole-archive $(ENGINE_A) $(BASE_A) -Wl,--no-whole-archive \
		$(LDFLAGS) $(LIB_LIBS)
	ln -sf libblktrack.so.1 $(B)/libblktrack.so

# blktrack.conf is read with inih (userspace/config.c).
INIH_LIBS := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
$(B)/blktrack: $(CLI_SRC:%.c=$(B)/%.o) $(LIBSO)
	$(CC) -o $@ $(filter %.o,$^) -L$(B) -lblktrack $(RPATH) $(LDFLAGS) $(JSON_LIBS) \
		$(INIH_LIBS) $(BLKID_LIBS)
# The generator links the timers it writes to the installed template.
$(B)/userspace/cmd_config.o: CFLAGS += -DUNITDIR='"$(UNITDIR)"'


# The public API from the .so; the file formats (hidden there) from the archive.
$(B)/blktrack-dump: $(DUMP_SRC:%.c=$(B)/%.o) $(BASE_A) $(LIBSO)
	$(CC) -o $@ $(filter %.o,$^) -L$(B) -lblktrack $(BASE_A) $(RPATH) \
		$(LDFLAGS) $(LIB_LIBS)

# Small C programs the VM tests run in the guest (ioctl errno checks...),
# and a boot sector QEMU boots there (tests/vm/0962-qemu-writer.sh).
vmprogs: $(VMPROG_SRC:tests/vm/progs/%.c=$(B)/vmprogs/%) $(B)/vmprogs/bootsector-guest.bin
$(B)/vmprogs/bootsector-guest.bin: tests/vm/progs/bootsector-guest.S
	@mkdir -p $(dir $@)
	$(CC) -m32 -c -o $@.o $<
	ld -m elf_i386 -Ttext 0x7c00 --oformat binary -e _start -o $@ $@.o
	rm -f $@.o
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
UNIT_CFLAGS := $(CFLAGS) -DBTMAP_USERSPACE -Ikmod -Itests/fuzz -Itests/unit -pthread
UNIT_HDR := $(wildcard tests/unit/*.h kmod/btmap*.h include/uapi/linux/*.h) $(LIB_HDR)
$(B)/unit-tests: $(UNIT_SRC) $(wildcard tests/fuzz/*.[ch]) kmod/btmap.c userspace/config.[ch] $(UNIT_HDR) \
		$(ENGINE_A) $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ $(UNIT_SRC) $(FUZZ_ENTRY) kmod/btmap.c userspace/config.c \
		$(ENGINE_A) $(BASE_A) -lcriterion -lurcu -lurcu-common $(LIB_LIBS) $(INIH_LIBS)

# Tests of the library's whole operations (blktrack_backup(), blktrack_restore()...):
# tests/unit/lib/, over the fake kernel (tests/unit/fake_kernel.c: the module's
# map, in process) with plain files as volumes.
UNIT_WHOLE_SRC := $(wildcard tests/unit/lib/*.c)
FAKE_KERNEL_SRC := tests/unit/fake_kernel.c kmod/btmap.c
$(B)/unit-tests-lib: $(UNIT_WHOLE_SRC) $(FAKE_KERNEL_SRC) $(UNIT_HDR) $(ENGINE_A) $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ $(UNIT_WHOLE_SRC) $(FAKE_KERNEL_SRC) $(ENGINE_A) $(BASE_A) \
		-lcriterion -lurcu -lurcu-common $(LIB_LIBS)

unit: abi-check check-layers $(B)/unit-tests $(B)/unit-tests-lib
	$(B)/unit-tests --jobs 2
	$(B)/unit-tests-lib --jobs 2

# The unit tests under ASan/UBSan, the library too (its own build tree): a
# leaf freed before its grace period shows as a use after free. Criterion
# itself leaks a little: no leak check.
ASAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_RUN := ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1
unit-asan:
	$(MAKE) B=$(B)/asan EXTRA_CFLAGS="$(ASAN_FLAGS)" $(B)/asan/unit-tests \
		$(B)/asan/unit-tests-lib
	$(ASAN_RUN) $(B)/asan/unit-tests --jobs 2
	$(ASAN_RUN) $(B)/asan/unit-tests-lib --jobs 2

# The include rule between lib/'s layers (doc/ARCHITECTURE.md).
check-layers:
	scripts/check-layers.sh

# libFuzzer on the parsers (doc/RELIABILITY.md, "Fuzzing"): like a benchmark,
# not part of check. Each target starts from tests/fuzz/corpus/NAME/; what it
# adds goes to build/fuzz/NAME/, crashers to build/fuzz/NAME-crash-*
# (minimize them with -minimize_crash=1, name them RESULT.what and commit).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_TARGETS := bfile catalog blockset blockhash state
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_FLAGS   := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude/uapi -Ilib -Itests/fuzz \
		-fsanitize=fuzzer $(FUZZ_SAN)
# The parsers' archive, built by the fuzzing compiler in its own tree.
FUZZ_BASE_A  := $(B)/fuzz/lib/libbtbase.a
$(FUZZ_BASE_A): FORCE
	$(MAKE) B=$(B)/fuzz/lib CC=$(FUZZ_CC) TEST_HOOKS=0 \
		EXTRA_CFLAGS="-O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)" $@
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_ENTRY) $(FUZZ_BASE_A) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_ENTRY) $(FUZZ_BASE_A) $(LIB_LIBS)

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
$(B)/bench-bfile: tests/bench/bench_bfile.c $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ tests/bench/bench_bfile.c $(BASE_A) $(LIB_LIBS)

bench-bfile: $(B)/bench-bfile
	$(B)/bench-bfile

# Userspace benchmark of growth (issue 5): delta composition and restore
# against the number of extents and the chain length; the whole library,
# linked statically (repo/ and format/ internals are called directly).
$(B)/bench-growth: tests/bench/bench_growth.c $(ENGINE_A) $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(CFLAGS) -o $@ tests/bench/bench_growth.c $(ENGINE_A) $(BASE_A) $(LIB_LIBS)

bench-growth: $(B)/bench-growth
	$(B)/bench-growth

# The cost of a merge (prune): bytes read and written against the bytes replaced,
# over the fake kernel (doc/BENCHMARKS.md, "Retention").
$(B)/bench-prune: tests/bench/bench_prune.c $(FAKE_KERNEL_SRC) $(UNIT_HDR) $(ENGINE_A) $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ tests/bench/bench_prune.c $(FAKE_KERNEL_SRC) $(ENGINE_A) \
		$(BASE_A) -lurcu -lurcu-common $(LIB_LIBS)

bench-prune: $(B)/bench-prune
	$(B)/bench-prune

# Dependencies first, then a fresh make: LIB_LIBS is computed by pkg-config
# when the Makefile is parsed, so the build must start after install-deps.
check:
	scripts/install-deps.sh
	scripts/install-kernels.sh $(VM_FLAVOURS)
	$(MAKE) all vmprogs unit
	tests/install/check-install.sh
	tests/vm/run.sh
	tests/vm/reboot.sh

# The VM tests on the kernels `make check` leaves out: Debian's PREEMPT_RT and
# generic kernels of both LTS lines, unpacked into /var/cache/blktrack/kernels
# (never installed on the host). Both suites run, whatever the first gives.
check-kernels: VM_FLAVOURS = $(CHECK_KERNELS_FLAVOURS)
check-kernels:
	scripts/install-deps.sh
	scripts/install-kernels.sh $(VM_FLAVOURS)
	$(MAKE) all vmprogs
	tests/vm/run.sh; rc=$$?; tests/vm/reboot.sh && exit $$rc

kernels:
	scripts/install-kernels.sh

# The VM tests on a debug kernel (issue 12, point 5): Debian's 6.12 source
# with lockdep, KASAN, kmemleak and DEBUG_OBJECTS, built once into
# build/debug-kernel/ (scripts/build-debug-kernel.sh; DEBUG_SERIES="6.12 6.1"
# for both lines). A lockdep, KASAN, ODEBUG or atomic-sleep report, or a
# kmemleak leak of a blktrack object, fails the test that caused it. Not in
# check: the first build takes about an hour here, the suite longer than
# check's (README.md, "Test kernels").
DEBUG_SERIES ?= 6.12
check-debug: VM_FLAVOURS = debug
check-debug:
	scripts/install-deps.sh
	nice -n 10 scripts/build-debug-kernel.sh $(DEBUG_SERIES)
	$(MAKE) all vmprogs
	tests/vm/run.sh; rc=$$?; tests/vm/reboot.sh && exit $$rc

# The system test (tests/system/run.sh): mmdebstrap, make deb, four boots.
check-system:
	scripts/install-deps.sh
	scripts/install-deps.sh --system
	tests/system/run.sh

# The Ceph tests (tests/ceph/run.sh): a single-node cluster from Debian's
# packages on 127.0.0.1 (tests/ceph/cluster.sh), host-side: the repositories
# are made by the library over the fake kernel (build/ceph-mkchain).
$(B)/ceph-mkchain: tests/ceph/mkchain.c $(FAKE_KERNEL_SRC) $(UNIT_HDR) $(ENGINE_A) $(BASE_A)
	@mkdir -p $(B)
	$(CC) $(UNIT_CFLAGS) -o $@ tests/ceph/mkchain.c $(FAKE_KERNEL_SRC) $(ENGINE_A) $(BASE_A) \
		-lurcu -lurcu-common $(LIB_LIBS)

check-ceph:
	scripts/install-deps.sh
	scripts/install-deps.sh --ceph
	$(MAKE) all $(B)/ceph-mkchain
	tests/ceph/run.sh

# The copy to RADOS against rados bench on the same cluster (doc/BENCHMARKS.md).
bench-ceph:
	scripts/install-deps.sh --ceph
	$(MAKE) all $(B)/ceph-mkchain
	tests/ceph/bench.sh

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

# ---- install ---------------------------------------------------------------
# make install / make uninstall, DESTDIR and the directories below honoured
# (`make install PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu`: debian/rules).
# The release build (build/release) has no test hook and no RPATH. What goes
# where: README.md, "Installing"; tests/install/check-install.sh checks it.
SBINDIR      ?= $(PREFIX)/sbin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DATADIR      ?= $(PREFIX)/share
MANDIR       ?= $(DATADIR)/man
DOCDIR       ?= $(DATADIR)/doc/blktrack
EXAMPLESDIR  ?= $(DOCDIR)/examples
BASHCOMPDIR  ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR   ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDDIR   ?= $(PREFIX)/lib/systemd
UNITDIR      ?= $(SYSTEMDDIR)/system
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
INITRAMFSDIR ?= $(DATADIR)/initramfs-tools
# DKMS finds module sources only in /usr/src, whatever PREFIX is.
DKMSSRCDIR   ?= /usr/src
DKMSDIR      := $(DKMSSRCDIR)/blktrack-$(VERSION)

# The library: libblktrack.so.SOMAJOR.MINOR.PATCH, with the soname link
# libblktrack.so.SOMAJOR and the development link libblktrack.so.
SOMAJOR      := 1
LIBREAL      := libblktrack.so.$(SOMAJOR).0.0
MAN_PAGES    := $(wildcard doc/*.[1-9])
EXAMPLE_WRITERS := $(wildcard examples/writers/*)
# The module's source for DKMS: what kmod/Kbuild compiles, its compat probes,
# the ABI header, and the top-level Kbuild that enters kmod/.
DKMS_FILES   := Kbuild kmod/Kbuild $(wildcard kmod/*.c kmod/*.h) kmod/compat/compat.h \
		kmod/compat/gen-config.sh $(wildcard kmod/compat/probes/*.c) \
		include/uapi/linux/blktrack.h
# Boot and device integration, @SBINDIR@ replaced on the way:
# systemd/*.{service,timer} -> UNITDIR, systemd/system-shutdown/* and
# systemd/system-generators/* -> SYSTEMDDIR/..., udev/*.rules ->
# UDEVRULESDIR, initramfs-tools/{hooks,scripts/...}/* -> INITRAMFSDIR.
UNIT_FILES   := $(wildcard systemd/*.service systemd/*.timer)
SYSTEMD_HOOKS := $(wildcard systemd/system-shutdown/* systemd/system-generators/*)
UDEV_FILES   := $(wildcard udev/*.rules)
INITRAMFS_FILES := $(shell find initramfs-tools -type f 2>/dev/null)
# install_subst SRC DEST: SRC with its paths filled in, its mode kept (+x or not).
install_subst = install -d "$$(dirname $(2))" && sed -e 's|@SBINDIR@|$(SBINDIR)|g' $(1) >$(2) && \
	chmod $$(test -x $(1) && echo 0755 || echo 0644) $(2)

REL := $(B)/release
# The release build, without test hooks or RPATH. CFLAGS as given goes in the
# environment (on the command line the sub-make could not append to it).
release:
	CFLAGS='$(USER_CFLAGS)' $(MAKE) B=$(REL) \
		TEST_HOOKS=0 RPATH= all $(REL)/libblktrack.pc $(REL)/dkms.conf

$(B)/libblktrack.pc: lib/libblktrack.pc.in FORCE
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< >$@

$(B)/dkms.conf: kmod/dkms.conf.in FORCE
	@mkdir -p $(B)
	sed -e 's|@VERSION@|$(VERSION)|' $< >$@

install: release
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/linux $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(EXAMPLESDIR)/writers \
		$(DESTDIR)$(SYSCONFDIR)/blktrack/writers.d
	install -m 0755 $(REL)/blktrack $(REL)/blktrack-dump $(DESTDIR)$(SBINDIR)/
	# The commented example, never over an admin's own.
	[ -e $(DESTDIR)$(SYSCONFDIR)/blktrack/blktrack.conf ] || \
		install -m 0644 examples/blktrack.conf $(DESTDIR)$(SYSCONFDIR)/blktrack/blktrack.conf
	install -m 0644 $(REL)/libblktrack.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/$(LIBREAL)
	ln -sf $(LIBREAL) $(DESTDIR)$(LIBDIR)/libblktrack.so.$(SOMAJOR)
	ln -sf libblktrack.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libblktrack.so
	install -m 0644 $(REL)/libblktrack.pc $(DESTDIR)$(PKGCONFIGDIR)/libblktrack.pc
	install -m 0644 lib/libblktrack.h $(DESTDIR)$(INCLUDEDIR)/libblktrack.h
	install -m 0644 include/uapi/linux/blktrack.h $(DESTDIR)$(INCLUDEDIR)/linux/blktrack.h
	for m in $(MAN_PAGES); do \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done
	install -m 0644 contrib/bash-completion/blktrack $(DESTDIR)$(BASHCOMPDIR)/blktrack
	ln -sf blktrack $(DESTDIR)$(BASHCOMPDIR)/blktrack-dump
	$(if $(EXAMPLE_WRITERS),install -m 0755 $(EXAMPLE_WRITERS) $(DESTDIR)$(EXAMPLESDIR)/writers/)
	for f in $(DKMS_FILES); do \
		install -D -m 0644 $$f $(DESTDIR)$(DKMSDIR)/$$f || exit 1; \
	done
	install -m 0644 $(REL)/dkms.conf $(DESTDIR)$(DKMSDIR)/dkms.conf
	for f in $(UNIT_FILES); do \
		$(call install_subst,$$f,$(DESTDIR)$(UNITDIR)/$${f#systemd/}) || exit 1; \
	done
	for f in $(SYSTEMD_HOOKS); do \
		$(call install_subst,$$f,$(DESTDIR)$(SYSTEMDDIR)/$${f#systemd/}) || exit 1; \
	done
	for f in $(UDEV_FILES); do \
		$(call install_subst,$$f,$(DESTDIR)$(UDEVRULESDIR)/$${f#udev/}) || exit 1; \
	done
	for f in $(INITRAMFS_FILES); do \
		$(call install_subst,$$f,$(DESTDIR)$(INITRAMFSDIR)/$${f#initramfs-tools/}) || exit 1; \
	done

# Every file install wrote, and the directories that are blktrack's own;
# the shared ones (PREFIX/sbin...) stay, and so does a blktrack.conf an
# admin changed.
uninstall:
	! cmp -s examples/blktrack.conf $(DESTDIR)$(SYSCONFDIR)/blktrack/blktrack.conf || \
		rm -f $(DESTDIR)$(SYSCONFDIR)/blktrack/blktrack.conf
	rm -f $(DESTDIR)$(SBINDIR)/blktrack $(DESTDIR)$(SBINDIR)/blktrack-dump \
		$(DESTDIR)$(LIBDIR)/$(LIBREAL) $(DESTDIR)$(LIBDIR)/libblktrack.so.$(SOMAJOR) \
		$(DESTDIR)$(LIBDIR)/libblktrack.so $(DESTDIR)$(PKGCONFIGDIR)/libblktrack.pc \
		$(DESTDIR)$(INCLUDEDIR)/libblktrack.h $(DESTDIR)$(INCLUDEDIR)/linux/blktrack.h \
		$(DESTDIR)$(BASHCOMPDIR)/blktrack $(DESTDIR)$(BASHCOMPDIR)/blktrack-dump \
		$(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNIT_FILES))) \
		$(addprefix $(DESTDIR)$(SYSTEMDDIR)/,$(SYSTEMD_HOOKS:systemd/%=%)) \
		$(addprefix $(DESTDIR)$(UDEVRULESDIR)/,$(notdir $(UDEV_FILES))) \
		$(addprefix $(DESTDIR)$(INITRAMFSDIR)/,$(INITRAMFS_FILES:initramfs-tools/%=%))
	rm -rf $(DESTDIR)$(DKMSDIR) $(DESTDIR)$(EXAMPLESDIR)/writers
	-rmdir $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(SYSCONFDIR)/blktrack/writers.d $(DESTDIR)$(SYSCONFDIR)/blktrack 2>/dev/null

# The Debian packages (debian/): built from a copy of the tree in
# $(B)/deb/blktrack-VERSION, so that dpkg-buildpackage writes its .debs and
# .changes into $(B)/deb, then lintian on them (an error fails; warnings
# are printed). Needs dpkg-dev, debhelper, dh-dkms, lintian and the
# Build-Depends of debian/control. DEB_BUILD_OPTIONS=nocheck: no unit tests.
DEB_DIR := $(B)/deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/blktrack-$(VERSION)
	tar -c --exclude=./.git --exclude=./$(B) --exclude='*.o' --exclude='*.ko' . | \
		tar -x -C $(DEB_DIR)/blktrack-$(VERSION)
	cd $(DEB_DIR)/blktrack-$(VERSION) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error --info $(DEB_DIR)/*.changes
	@ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(B)
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null


FORCE:

.PHONY: FORCE check-system check-ceph bench-ceph check-layers fuzz fuzz-build bench bench-map bench-bfile bench-growth bench-prune all abi-check kmod kmod-all kmod-clean unit unit-asan check check-kernels check-debug kernels soak demo deps release install uninstall deb clean vmprogs
