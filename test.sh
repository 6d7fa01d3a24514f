#!/bin/sh
# Runs the tests of every Go module in this repository, with the race
# detector. Extra arguments go to each "go test", for example -run or -v.
set -eu
cd "$(dirname "$0")"

status=0
for gomod in $(find . -name go.mod -not -path './.git/*' | sort); do
	dir=$(dirname "$gomod")
	echo "== $dir"
	(cd "$dir" && go test -race "$@" ./...) || status=1
done
exit $status
