package action

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"
)

// maxCommentBody is GitHub's limit on an issue comment's body (65,536
// characters); the action stays under it in bytes.
const maxCommentBody = 65536

// commentMarker is the hidden first line that identifies the action's
// comment for cmd, so each run updates it instead of adding another.
func commentMarker(cmd string) string { return "<!-- passman-action:" + cmd + " -->" }

// commenter writes the action's one comment on a pull request.
type commenter struct {
	gh          *github.Client
	owner, repo string
	pr          int
	// author is the login the action's comments are made as: only a
	// comment of that author that starts with the marker is updated, so a
	// contributor who pastes the marker into their own comment cannot make
	// the action overwrite it (or make it read theirs as its own).
	author string
}

// newCommenter returns nil when there is no pull request, or comments are
// off.
func (r *run) newCommenter(ev event) (*commenter, error) {
	if ev.PR == 0 {
		return nil, nil
	}
	on, err := r.boolInput("comment", true)
	if err != nil || !on {
		return nil, err
	}
	token := r.input("github-token")
	if token == "" {
		r.gh.Noticef("pull request comment skipped: input github-token is empty")
		return nil, nil
	}
	r.gh.AddMask(token)
	owner, repo, ok := strings.Cut(r.getenv("GITHUB_REPOSITORY"), "/")
	if !ok || owner == "" || repo == "" {
		return nil, errors.New("GITHUB_REPOSITORY is not owner/name")
	}
	hc := r.env.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	c := github.NewClient(hc).WithAuthToken(token)
	api := r.input("api-url")
	if api == "" {
		api = r.getenv("GITHUB_API_URL")
	}
	if api != "" && api != "https://api.github.com" {
		u, err := url.Parse(strings.TrimSuffix(api, "/") + "/")
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("input api-url %q is not an http(s) URL", api)
		}
		c.BaseURL = u
	}
	author := r.input("comment-author")
	if author == "" {
		author = "github-actions[bot]"
	}
	return &commenter{gh: c, owner: owner, repo: repo, pr: ev.PR, author: author}, nil
}

// upsert creates or updates the comment for cmd with body.
func (c *commenter) upsert(ctx context.Context, cmd, body string) error {
	marker := commentMarker(cmd)
	body = truncateComment(marker + "\n" + body)
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	var existing *github.IssueComment
	for existing == nil {
		page, resp, err := c.gh.Issues.ListComments(ctx, c.owner, c.repo, c.pr, opts)
		if err != nil {
			return fmt.Errorf("list pull request comments: %w", err)
		}
		for _, cm := range page {
			if cm.GetUser().GetLogin() == c.author && strings.HasPrefix(cm.GetBody(), marker) {
				existing = cm
				break
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if existing != nil {
		if existing.GetBody() == body {
			return nil
		}
		if _, _, err := c.gh.Issues.EditComment(ctx, c.owner, c.repo, existing.GetID(), &github.IssueComment{Body: &body}); err != nil {
			return fmt.Errorf("update pull request comment: %w", err)
		}
		return nil
	}
	if _, _, err := c.gh.Issues.CreateComment(ctx, c.owner, c.repo, c.pr, &github.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("create pull request comment: %w", err)
	}
	return nil
}

func truncateComment(s string) string {
	const note = "\n\n… (cut: see the step summary for the rest)\n"
	if len(s) <= maxCommentBody {
		return s
	}
	cut := maxCommentBody - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// isForbidden: GitHub refused the token (a fork's read-only token, or a
// workflow without pull-requests: write).
func isForbidden(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && (er.Response.StatusCode == http.StatusForbidden || er.Response.StatusCode == http.StatusNotFound)
}

// comment posts body as cmd's comment, turning a refusal into a warning:
// scan and policy must still work on a fork's pull request.
func (r *run) comment(c *commenter, cmd, body string) error {
	if c == nil {
		return nil
	}
	err := c.upsert(r.ctx, cmd, body)
	if err != nil && isForbidden(err) {
		r.gh.Warningf("pull request comment skipped: the token may not write it (%s); a pull request from a fork gets a read-only token, and other workflows need permissions: pull-requests: write", oneLine(err))
		return nil
	}
	return err
}
