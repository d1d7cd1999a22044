#!/bin/bash
# Builds, in a new directory "repo" under the current one, the repository
# whose `git log` output (with the scanner's own options, see
# scanner/git.go) is history.log, the input of TestLogParserHistory:
#   cd "$(mktemp -d)" && bash .../gen.sh && cp history.log .../scanner/testdata/gitlog/
set -euo pipefail
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=/nonexistent
export GIT_AUTHOR_NAME="Ada Author" GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME="Cy Committer" GIT_COMMITTER_EMAIL=cy@example.com
n=0
c() { export GIT_AUTHOR_DATE="$((1700000000+60*n)) +0200" GIT_COMMITTER_DATE="$((1700000000+60*n)) +0200"; n=$((n+1)); git add -A; git commit -q --allow-empty -m "$1"; }
git init -q repo && cd repo && git symbolic-ref HEAD refs/heads/main
printf 'alpha\nbeta\ngamma\n' > a.txt; printf 'no newline' > nonl.txt; printf '\x00\x01bin' > b.bin; c root
printf 'alpha\nBETA\ngamma\ndelta\n' > a.txt; printf 'no newline\nnow\n' > nonl.txt; printf 'one\r\ntwo\r\n' > crlf.txt; printf 'x\n' > $'caf\xc3\xa9"q".txt'; printf 'y\n' > 'with space.txt'; printf '\x00\x02bin' > b.bin; c edits
git mv a.txt renamed.txt; printf 'alpha\nBETA\ngamma\ndelta\nepsilon\n' > renamed.txt; rm crlf.txt; c "rename, delete"
git checkout -q -b side; printf 'side\n' > side.txt; printf 'alpha\nBETA\ngamma\ndelta\nepsilon\nside\n' > renamed.txt; c side
git checkout -q main; printf 'main\nalpha\nBETA\ngamma\ndelta\nepsilon\n' > renamed.txt; c main
git merge -q --no-ff --no-commit side || true
printf 'main\nalpha\nBETA\nmerged in\ngamma\ndelta\nepsilon\nside\n' > renamed.txt; printf 'only in the merge\n' > evil.txt; c merge
git checkout -q -b o1 main~1; printf 'o1\n' > o1.txt; c o1
git checkout -q -b o2 main~1; printf 'o2\n' > o2.txt; c o2
git checkout -q main; export GIT_AUTHOR_DATE="$((1700000000+60*n)) +0200" GIT_COMMITTER_DATE="$((1700000000+60*n)) +0200"; git merge -q --no-ff --no-commit o1 o2 || true; printf 'octo\n' > octo.txt; c octopus
git -c core.quotePath=true -c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false -c log.showRoot=true -c log.showSignature=false -c color.ui=never -c diff.suppressBlankEmpty=false -c diff.interHunkContext=0 \
  log -p --cc '--format=%x00%H%x00%P%x00%an%x00%ae%x00%aI' -U0 -M --text --no-color --no-ext-diff --no-textconv --src-prefix=a/ --dst-prefix=b/ --topo-order --reverse --all > ../history.log
