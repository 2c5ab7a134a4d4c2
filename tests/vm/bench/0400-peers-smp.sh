#!/bin/sh
# Benchmark (issue 5): 0400-peers on 2 vCPUs with 2 fio jobs, one pinned to
# each CPU: does tracking serialize the CPUs? Keys are prefixed "smp2_".
# Under -icount the two vCPUs run in turn and the guest clock counts the
# instructions of both, so IOPS are 10^9 / (instructions per write, summed
# over CPUs): a lock that spins shows, cache lines bouncing between CPUs do
# not (doc/BENCHMARKS.md, "2 vCPUs, 2 jobs").
# vm-smp: 2
PEERS_JOBS=2
. /blktrack/tests/vm/bench/0400-peers.sh
