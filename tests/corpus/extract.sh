#!/bin/bash
# Re-extract the corpora's .wdl files (and centaur .test files) from the fetched mirrors into ./<source>/
# preserving repository-relative paths, so relative imports resolve.
set -e; cd "$(dirname "$0")"; M=${FERRY_MIRRORS:-/work/.mirror}
ex(){ name=$1; repo=$2; gd=$M/$2/repo; shift 2; rm -rf "$name"; mkdir -p "$name"
  git --git-dir=$gd ls-tree -r HEAD --name-only -- "$@" | grep -E '\.(wdl|test)$|inputs\.json$' | while read -r p; do
    mkdir -p "$name/$(dirname "$p")"; git --git-dir=$gd show "HEAD:$p" > "$name/$p"; done
  echo "$name $repo $(git --git-dir=$gd rev-parse HEAD)" ; }
{
ex cromwell broadinstitute+cromwell centaur/src/main/resources/standardTestCases womtool/src/test/resources
ex miniwdl chanzuckerberg+miniwdl test_corpi tests examples
ex biowdl-tasks biowdl+tasks .
ex learn-wdl openwdl+learn-wdl .
ex gatk4-germline-snps-indels gatk-workflows+gatk4-germline-snps-indels .
} > sources.txt
