#!/bin/sh
# Lambda's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) for a function whose V8 heap is tuned by QueueConsumer's
# `semiSpaceMb` or `heapGrowingPercent`: Lambda runs this script with the runtime's command line (node,
# its flags, the runtime client) and it runs that command with
#   --max-semi-space-size=$V8_SEMI_SPACE_MB, in place of the bootstrap's tenth of the function's memory;
#   --heap-growing-percent=$V8_HEAP_GROWING_PERCENT, how far the old generation may grow past what the
#     last full collection kept before V8 marks it again (V8 picks a factor of its own when unset).
# An unset variable leaves its flag as the bootstrap passed it; everything else is passed on unchanged.
# A shell script because Lambda starts the wrapper before any Node code can run, and NODE_OPTIONS takes
# neither flag from a function: the bootstrap's own --max-semi-space-size comes after it, and Node
# refuses --heap-growing-percent there.
semi=$V8_SEMI_SPACE_MB
grow=$V8_HEAP_GROWING_PERCENT
if [ -z "$semi" ] && [ -z "$grow" ]; then exec "$@"; fi
case "$semi" in
  *[!0-9]* | 0*) echo "heap-wrapper: V8_SEMI_SPACE_MB must be a positive whole number of MB, not '$semi'" >&2; exit 64 ;;
esac
case "$grow" in
  *[!0-9]* | 0*) echo "heap-wrapper: V8_HEAP_GROWING_PERCENT must be a positive whole number, not '$grow'" >&2; exit 64 ;;
esac
count=$#
semi_set=
grow_set=
for arg in "$@"; do
  case "$arg" in
    --max-semi-space-size=*) if [ -n "$semi" ]; then arg="--max-semi-space-size=$semi" semi_set=1; fi ;;
    --heap-growing-percent=*) if [ -n "$grow" ]; then arg="--heap-growing-percent=$grow" grow_set=1; fi ;;
  esac
  set -- "$@" "$arg"
done
shift "$count"
# A flag the bootstrap did not pass (it may one day stop passing the semi-space) goes right after the
# interpreter.
node=$1
shift
if [ -n "$grow" ] && [ -z "$grow_set" ]; then set -- "--heap-growing-percent=$grow" "$@"; fi
if [ -n "$semi" ] && [ -z "$semi_set" ]; then set -- "--max-semi-space-size=$semi" "$@"; fi
exec "$node" "$@"
