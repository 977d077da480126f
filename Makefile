# Thin wrapper over CMake.  `make check` and `make demo` install what they need.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc)
# Most tests wait on sleeps, subprocesses and loopback I/O: run a few more
# than there are cores.
CTEST_JOBS ?= $(shell echo $$(( $$(nproc) + 1 )))
CMAKE_ARGS ?=

.PHONY: all deps configure build check check-fast check-asan check-tsan demo bench fuzz install clean

all: build

deps:
	./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Everything: unit tests (and their valgrind twins), integration and slow
# tests, then every test that runs our C again under ASan+UBSan.  Label
# asan-only: a test that launches the libguestfs appliance under TCG (a
# minute or more each) runs once, in the ASan pass (below), which checks
# more than the plain build would: convert-guest-integration (a whole
# conversion of the test guest; e2e-ec2-guest-uefi-lvm runs the same
# library through provider-ec2 in the plain build, e2e-ec2-apply-* its
# conversion Pods), convert-verify-test (its valgrind twin stays in the
# plain pass), convert-cancel-real, convert-op-verification, convert-no-os,
# convert-inspect-firmware and convert-fixup-synthetic.
check: deps
	$(MAKE) build
	ctest --test-dir $(BUILD) --output-on-failure -j $(CTEST_JOBS) -LE asan-only
	$(MAKE) check-asan
	$(MAKE) check-tsan

check-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE 'slow|valgrind'

check-asan:
	cmake -S . -B $(BUILD_ASAN) -DPALLET_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	# PALLET_NO_DLCLOSE: providers stay mapped at exit, so LeakSanitizer can
	# name the frames of a provider's leak instead of "<unknown module>", and
	# the one-time allocations of the libraries a provider pulls in (libcurl,
	# libxml2, Kerberos...) stay reachable rather than orphaned by dlclose.
	# Every test that executes C of ours runs here, slow ones too (fault
	# storm, crash manifests, e2e, the real conversion).  Left out, by label:
	#   valgrind  the memcheck twins: valgrind cannot run an ASan binary.
	#   endpoint  tests/endpoint's own tests: the Python endpoint driven by
	#             botocore and /usr/bin/aws; none starts a binary of this
	#             build (they never read PALLET_BIN or a build dir).
	#   no-c      runs none of our C: docs checks that read files, compile
	#             only or run groff; the guest image build and boot (QEMU).
	#   noasan    runs C of ours, but not this build's: fuzz-smoke and
	#             packaging-* build their own binaries; each says why where
	#             it is labelled.
	#   once      a whole TCG conversion whose C of ours the ASan pass runs
	#             elsewhere: e2e-ec2-apply-* (provider-ec2 and the host in
	#             cluster mode, run by e2e-cluster-apply and
	#             kube-endpoint-transfer-mode here; pallet-convert-tool by
	#             convert-guest-integration), e2e-ec2-guest-uefi-lvm,
	#             e2e-v2v-vcenter-convert-boot (provider-v2v, run by the
	#             e2e-v2v-* tests with a stand-in virt-v2v),
	#             e2e-v2v-conversion-in-place-boot (e2e-v2v-ConversionOnly
	#             runs its C with a stand-in virt-v2v-in-place); a second
	#             conversion would cost CI minutes for no new coverage.
	PALLET_NO_DLCLOSE=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(CTEST_JOBS) -LE 'valgrind|endpoint|no-c|noasan|once'

# ThreadSanitizer over the threaded tests (label tsan): the host's services
# called from provider threads, and the driver's thread models.  Only what
# they run is built, so it stays short.
TSAN_TARGETS = pallet pallet-provider-stress pallet-provider-null \
  pallet-provider-null-serial pallet-provider-null-parallel
check-tsan:
	cmake -S . -B $(BUILD_TSAN) -DPALLET_TSAN=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -j $(CTEST_JOBS) -L tsan

demo: deps
	$(MAKE) build
	./scripts/demo.sh $(BUILD)

bench: deps
	$(MAKE) build
	./bench/run.sh $(BUILD)

# Long libFuzzer runs (FUZZ_SECONDS per target, default 600); the ctest
# fuzz-smoke test is the short one.
fuzz:
	./tests/fuzz/run.sh -o build-fuzz -t $${FUZZ_SECONDS:-600}

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
