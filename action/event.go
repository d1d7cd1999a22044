package action

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
)

// maxEventSize bounds the event payload read from $GITHUB_EVENT_PATH.
// GitHub's webhook payloads are capped at 25 MB; the file is written by
// the runner, but its content (titles, commit messages) is the
// contributor's.
const maxEventSize = 25 << 20

// zeroSHA is the "before" of a branch's first push and the "after" of its
// deletion.
const zeroSHA = "0000000000000000000000000000000000000000"

// shaPattern is compiled on first use, not at every passman command's
// start-up.
var shaPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`) })

// event is what the action needs of the workflow's event: the name
// ($GITHUB_EVENT_NAME) and the payload's commits.
type event struct {
	Name string
	// Base and Head bound a pull request or a merge queue entry; Before and
	// After a push.
	Base, Head    string
	Before, After string
	// PR is the pull request's number (0 outside one); Commits its commit
	// count as GitHub gives it.
	PR      int
	Commits int
	// Fork: the pull request's head is in another repository, whose
	// workflow gets a read-only token and no ID token.
	Fork bool
	// Deleted: a push that deleted the ref.
	Deleted bool
	// Ref is the pushed ref; DefaultBranch the repository's.
	Ref, DefaultBranch string
}

type payload struct {
	Before      string `json:"before"`
	After       string `json:"after"`
	Ref         string `json:"ref"`
	Deleted     bool   `json:"deleted"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number  int `json:"number"`
		Commits int `json:"commits"`
		Base    struct {
			SHA  string   `json:"sha"`
			Repo *repoRef `json:"repo"`
		} `json:"base"`
		Head struct {
			SHA  string   `json:"sha"`
			Repo *repoRef `json:"repo"`
		} `json:"head"`
	} `json:"pull_request"`
	MergeGroup *struct {
		BaseSHA string `json:"base_sha"`
		HeadSHA string `json:"head_sha"`
	} `json:"merge_group"`
	Repository *repoRef `json:"repository"`
}

type repoRef struct {
	FullName      string `json:"full_name"`
	Fork          bool   `json:"fork"`
	DefaultBranch string `json:"default_branch"`
}

// readEvent reads the event named name from the payload file at path.
// Every commit id is checked to be a full hexadecimal object name before
// it goes near git.
func readEvent(name, path string) (event, error) {
	ev := event{Name: name}
	if path == "" {
		return ev, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return ev, nil
	}
	if err != nil {
		return ev, fmt.Errorf("read event payload: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEventSize+1))
	if err != nil {
		return ev, fmt.Errorf("read event payload: %w", err)
	}
	return parseEvent(name, b)
}

func parseEvent(name string, b []byte) (event, error) {
	ev := event{Name: name}
	if len(b) > maxEventSize {
		return ev, fmt.Errorf("event payload is larger than %d bytes", maxEventSize)
	}
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return ev, fmt.Errorf("event payload is not a JSON object: %v", err)
	}
	if p.Repository != nil {
		ev.DefaultBranch = p.Repository.DefaultBranch
	}
	sha := func(field, v string) (string, error) {
		v = strings.ToLower(v)
		if !shaPattern().MatchString(v) {
			return "", fmt.Errorf("event payload: %s is not a commit id", field)
		}
		return v, nil
	}
	var err error
	switch name {
	case "pull_request", "pull_request_target":
		pr := p.PullRequest
		if pr == nil {
			return ev, fmt.Errorf("event payload of %s has no pull_request", name)
		}
		ev.PR, ev.Commits = pr.Number, pr.Commits
		if ev.PR == 0 {
			ev.PR = p.Number
		}
		if ev.Base, err = sha("pull_request.base.sha", pr.Base.SHA); err != nil {
			return ev, err
		}
		if ev.Head, err = sha("pull_request.head.sha", pr.Head.SHA); err != nil {
			return ev, err
		}
		if pr.Head.Repo == nil {
			// GitHub sends a null head repository when the fork was deleted.
			ev.Fork = true
		} else if pr.Base.Repo != nil {
			ev.Fork = !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName)
		}
	case "merge_group":
		mg := p.MergeGroup
		if mg == nil {
			return ev, fmt.Errorf("event payload of merge_group has no merge_group")
		}
		if ev.Base, err = sha("merge_group.base_sha", mg.BaseSHA); err != nil {
			return ev, err
		}
		if ev.Head, err = sha("merge_group.head_sha", mg.HeadSHA); err != nil {
			return ev, err
		}
	case "push":
		ev.Ref, ev.Deleted = p.Ref, p.Deleted
		if ev.Before, err = sha("before", p.Before); err != nil {
			return ev, err
		}
		if ev.After, err = sha("after", p.After); err != nil {
			return ev, err
		}
	}
	return ev, nil
}
