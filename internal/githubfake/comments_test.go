package githubfake

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
)

func TestComments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New()
	defer s.Close()
	s.AddToken("rw", "github-actions[bot]", false)
	s.AddToken("ro", "github-actions[bot]", true)
	s.AddRepo("acme", "widgets")
	s.AddRepo("acme", "other")
	s.AddPullRequest("acme", "widgets", 7)
	c := client(t, s, "rw")

	body := "hello"
	cm, resp, err := c.Issues.CreateComment(ctx, "acme", "widgets", 7, &github.IssueComment{Body: &body})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp, err)
	}
	if cm.GetUser().GetLogin() != "github-actions[bot]" || cm.GetBody() != "hello" || cm.GetUser().GetType() != "Bot" {
		t.Fatalf("created comment: %+v", cm)
	}
	for i := range 4 {
		s.PostComment("acme", "widgets", 7, "octocat", fmt.Sprint("c", i))
	}
	// Pagination: three pages of two, followed through the Link header.
	var got []string
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 2}}
	pages := 0
	for {
		page, resp, err := c.Issues.ListComments(ctx, "acme", "widgets", 7, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, x := range page {
			got = append(got, x.GetBody())
		}
		if resp.NextPage == 0 {
			if resp.LastPage != 0 {
				t.Errorf("last page has a last link")
			}
			break
		}
		opts.Page = resp.NextPage
	}
	if pages != 3 || strings.Join(got, ",") != "hello,c0,c1,c2,c3" {
		t.Fatalf("listed %d pages: %v", pages, got)
	}

	edited := "edited"
	if _, _, err := c.Issues.EditComment(ctx, "acme", "widgets", cm.GetID(), &github.IssueComment{Body: &edited}); err != nil {
		t.Fatalf("edit: %v", err)
	}
	if cs := s.Comments("acme", "widgets", 7); cs[0].Body != "edited" || len(cs) != 5 {
		t.Fatalf("after edit: %+v", cs)
	}
	// A comment is reached only through its own repository.
	if _, _, err := c.Issues.EditComment(ctx, "acme", "other", cm.GetID(), &github.IssueComment{Body: &edited}); status(err) != 404 {
		t.Errorf("edit through another repository: %v", err)
	}
	// No such pull request.
	if _, _, err := c.Issues.ListComments(ctx, "acme", "widgets", 8, nil); status(err) != 404 {
		t.Errorf("list on a missing pull request: %v", err)
	}
	// Read-only (a fork's token): reads, never writes.
	ro := client(t, s, "ro")
	if _, _, err := ro.Issues.ListComments(ctx, "acme", "widgets", 7, nil); err != nil {
		t.Errorf("read-only list: %v", err)
	}
	if _, _, err := ro.Issues.CreateComment(ctx, "acme", "widgets", 7, &github.IssueComment{Body: &body}); status(err) != 403 {
		t.Errorf("read-only create: %v", err)
	}
	if _, _, err := ro.Issues.EditComment(ctx, "acme", "widgets", cm.GetID(), &github.IssueComment{Body: &body}); status(err) != 403 {
		t.Errorf("read-only edit: %v", err)
	}
	// Hostile and oversized bodies.
	long := strings.Repeat("é", maxCommentBody+1)
	if _, _, err := c.Issues.CreateComment(ctx, "acme", "widgets", 7, &github.IssueComment{Body: &long}); status(err) != 422 {
		t.Errorf("oversized body: %v", err)
	}
	for _, b := range []any{map[string]any{}, "not an object", map[string]any{"body": 5}} {
		code, _ := raw(t, "POST", s.URL+"/repos/acme/widgets/issues/7/comments", "Bearer rw", b)
		if code != 422 && code != 400 {
			t.Errorf("body %v: %d", b, code)
		}
	}
	if code, _ := raw(t, "GET", s.URL+"/repos/acme/widgets/issues/7/comments", "Bearer nope", nil); code != 401 {
		t.Errorf("bad token: %d", code)
	}
}
