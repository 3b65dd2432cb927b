#!/bin/sh
# Lambda's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) for a function whose young generation is set by
# QueueConsumer's `semiSpaceMb`: Lambda runs this script with the runtime's command line (node, its
# flags, the runtime client) and it runs that command with --max-semi-space-size set to
# $V8_SEMI_SPACE_MB instead of the bootstrap's tenth of the function's memory. Everything else is passed
# on unchanged. A shell script because Lambda starts the wrapper before any Node code can run.
if [ -z "$V8_SEMI_SPACE_MB" ]; then exec "$@"; fi
case "$V8_SEMI_SPACE_MB" in
  *[!0-9]* | 0*) echo "heap-wrapper: V8_SEMI_SPACE_MB must be a positive whole number of MB, not '$V8_SEMI_SPACE_MB'" >&2; exit 64 ;;
esac
flag="--max-semi-space-size=$V8_SEMI_SPACE_MB"
count=$#
replaced=
for arg in "$@"; do
  case "$arg" in
    --max-semi-space-size=*) arg=$flag replaced=1 ;;
  esac
  set -- "$@" "$arg"
done
shift "$count"
# The bootstrap may one day stop passing the flag: then it goes right after the interpreter.
if [ -z "$replaced" ]; then
  node=$1
  shift
  set -- "$node" "$flag" "$@"
fi
exec "$@"
