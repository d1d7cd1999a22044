package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// target is what a scan reads: Range "BASE..HEAD", or the whole history
// (Full), or nothing at all (Nothing: a deleted branch, a push of no new
// commit). Why says which, for the log and the summary.
type target struct {
	Range   string
	Full    bool
	Nothing bool
	Why     string
}

// repo runs git in the checkout. Fetching is allowed only when fetch is
// set (input fetch-history): otherwise a missing commit is an error that
// says which fetch-depth the checkout needs.
type repo struct {
	dir   string
	fetch bool
	// remote is the remote fetched from.
	remote string
	// log receives one line per fetch, for the step log.
	log func(string)
}

func (r *repo) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		sub := args[0]
		for i, a := range args {
			if !strings.HasPrefix(a, "-") && (i == 0 || args[i-1] != "-c") {
				sub = a
				break
			}
		}
		return "", fmt.Errorf("git %s: %w: %s", sub, err, msg)
	}
	return strings.TrimSpace(string(out)), nil
}

func (r *repo) hasCommit(ctx context.Context, sha string) bool {
	_, err := r.git(ctx, "cat-file", "-e", sha+"^{commit}")
	return err == nil
}

func (r *repo) shallow(ctx context.Context) bool {
	out, err := r.git(ctx, "rev-parse", "--is-shallow-repository")
	return err == nil && out == "true"
}

func (r *repo) mergeBase(ctx context.Context, a, b string) bool {
	_, err := r.git(ctx, "merge-base", a, b)
	return err == nil
}

// fetchArgs fetch without tags, and never ask for credentials.
func (r *repo) fetchCmd(ctx context.Context, args ...string) error {
	r.log("git fetch " + strings.Join(args, " "))
	_, err := r.git(ctx, append([]string{"-c", "protocol.version=2", "fetch", "--no-tags", "--quiet", r.remote}, args...)...)
	return err
}

// errHistory is a checkout without the history a scan needs.
var errHistory = errors.New("the checkout lacks the history to scan")

func historyError(what string) error {
	return fmt.Errorf("%w: %s; check out with actions/checkout's fetch-depth: 0 (or set fetch-history: true so the action fetches it)", errHistory, what)
}

// ensureRange makes base and head and their merge base present: a shallow
// checkout (actions/checkout's default fetch-depth 1) has neither a pull
// request's base nor its commits. Missing commits are fetched by id
// (GitHub serves any commit of the repository and its pull requests);
// then, while the two have no common ancestor in the shallow history,
// it deepens, doubling each time, and finally unshallows. hint is a
// first depth (a pull request's commit count).
func (r *repo) ensureRange(ctx context.Context, base, head string, hint int) error {
	for _, sha := range []string{base, head} {
		if r.hasCommit(ctx, sha) {
			continue
		}
		if !r.fetch {
			return historyError("commit " + sha + " is not in the checkout")
		}
		depth := max(hint+1, 2)
		args := []string{sha}
		if r.shallow(ctx) {
			args = append([]string{fmt.Sprintf("--depth=%d", depth)}, args...)
		}
		if err := r.fetchCmd(ctx, args...); err != nil {
			return fmt.Errorf("%w: fetch %s: %v", errHistory, sha, err)
		}
	}
	if !r.shallow(ctx) || r.mergeBase(ctx, base, head) {
		return nil
	}
	if !r.fetch {
		return historyError("the shallow checkout does not reach the merge base of " + base + " and " + head)
	}
	for depth := max(hint, 50); depth <= 1<<12; depth *= 2 {
		if err := r.fetchCmd(ctx, fmt.Sprintf("--deepen=%d", depth), base, head); err != nil {
			return fmt.Errorf("%w: %v", errHistory, err)
		}
		if r.mergeBase(ctx, base, head) || !r.shallow(ctx) {
			return nil
		}
	}
	if err := r.fetchCmd(ctx, "--unshallow", base, head); err != nil {
		return fmt.Errorf("%w: %v", errHistory, err)
	}
	return nil
}

// ensureFull makes the whole history present, for a scheduled or manual
// full scan.
func (r *repo) ensureFull(ctx context.Context) error {
	if !r.shallow(ctx) {
		return nil
	}
	if !r.fetch {
		return historyError("a full-history scan of a shallow checkout")
	}
	return r.fetchCmd(ctx, "--unshallow")
}

// defaultBranchCommit finds the default branch's tip, fetching it if
// allowed: the base of a new branch's first push.
func (r *repo) defaultBranchCommit(ctx context.Context, branch string) string {
	if branch == "" || strings.HasPrefix(branch, "-") || strings.ContainsAny(branch, " \t\n:") {
		return ""
	}
	for _, ref := range []string{"refs/remotes/" + r.remote + "/" + branch, "refs/heads/" + branch} {
		if sha, err := r.git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}"); err == nil {
			return sha
		}
	}
	if !r.fetch {
		return ""
	}
	if err := r.fetchCmd(ctx, "refs/heads/"+branch+":refs/remotes/"+r.remote+"/"+branch); err != nil {
		return ""
	}
	sha, err := r.git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", "refs/remotes/"+r.remote+"/"+branch+"^{commit}")
	if err != nil {
		return ""
	}
	return sha
}

// resolveTarget turns the event into what to scan, fetching what the
// checkout lacks.
func (r *repo) resolveTarget(ctx context.Context, ev event) (target, error) {
	if _, err := r.git(ctx, "rev-parse", "--git-dir"); err != nil {
		if ctx.Err() != nil {
			return target{}, ctx.Err()
		}
		return target{}, fmt.Errorf("%s is not a git checkout: run actions/checkout (with fetch-depth: 0 for a full-history scan) before this step", r.dir)
	}
	switch ev.Name {
	case "pull_request", "pull_request_target", "merge_group":
		if ev.Base == ev.Head {
			return target{Nothing: true, Why: "base and head are the same commit"}, nil
		}
		if err := r.ensureRange(ctx, ev.Base, ev.Head, ev.Commits); err != nil {
			return target{}, err
		}
		what := "pull request"
		if ev.Name == "merge_group" {
			what = "merge queue entry"
		}
		return target{Range: ev.Base + ".." + ev.Head, Why: fmt.Sprintf("%s %s..%s", what, short(ev.Base), short(ev.Head))}, nil
	case "push":
		switch {
		case ev.Deleted || ev.After == zeroSHA:
			return target{Nothing: true, Why: "the push deleted " + ev.Ref}, nil
		case ev.Before == ev.After:
			// trufflehog's most reported failure: a re-run or a push of
			// an existing commit is not an error, just nothing new.
			return target{Nothing: true, Why: "the push added no commit (before = after)"}, nil
		}
		if !r.hasCommit(ctx, ev.After) {
			if err := r.ensureRange(ctx, ev.After, ev.After, 0); err != nil {
				return target{}, err
			}
		}
		before, why := ev.Before, ""
		if before == zeroSHA {
			why = "new branch"
			before = ""
		} else if !r.hasCommit(ctx, before) && r.fetch {
			// A force push's old tip may still be fetchable.
			_ = r.fetchCmd(ctx, "--depth=1", before)
		}
		if before != "" && !r.hasCommit(ctx, before) {
			why, before = "force push whose previous tip "+short(ev.Before)+" is gone", ""
		}
		if before == "" {
			// Scan what the branch adds to the default branch; failing
			// that, everything.
			base := r.defaultBranchCommit(ctx, ev.DefaultBranch)
			if base == "" || base == ev.After {
				if err := r.ensureFull(ctx); err != nil {
					return target{}, err
				}
				return target{Full: true, Why: why + ": no default branch to compare with, full history"}, nil
			}
			before = base
			why += ", compared with " + ev.DefaultBranch
		} else {
			why = "push"
		}
		if err := r.ensureRange(ctx, before, ev.After, 0); err != nil {
			return target{}, err
		}
		return target{Range: before + ".." + ev.After, Why: fmt.Sprintf("%s %s..%s", why, short(before), short(ev.After))}, nil
	default:
		if err := r.ensureFull(ctx); err != nil {
			return target{}, err
		}
		return target{Full: true, Why: ev.Name + ": full history"}, nil
	}
}

func short(sha string) string { return sha[:min(len(sha), 12)] }
