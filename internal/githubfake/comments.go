package githubfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Pull-request comments (issue comments: GitHub serves a pull request's
// conversation through the Issues API), as the GitHub Action uses them:
//
//	GET   /repos/{owner}/{repo}/issues/{number}/comments   (per_page, page; Link header)
//	POST  /repos/{owner}/{repo}/issues/{number}/comments
//	PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}
//
// Emulated: listing in ascending id order, per_page 30 by default and at
// most 100, a Link header with rel="next" and rel="last" while pages
// remain; a body is required and at most 65,536 characters (422
// otherwise); a comment belongs to its repository (a PATCH through
// another repository is a 404); a token added read-only (a fork's
// pull request token) may list but not write: 403 "Resource not
// accessible by integration". Each comment records its author, the
// token's login. Not emulated: reactions, html_url being reachable,
// minimizing, deleting.

// maxCommentBody is GitHub's limit on a comment body, in characters.
const maxCommentBody = 65536

// Comment is a stored comment as a test sees it.
type Comment struct {
	ID                   int64
	Number               int
	Login                string
	Body                 string
	CreatedAt, UpdatedAt time.Time
}

type tokenInfo struct {
	login    string
	readOnly bool
}

// AddToken accepts token as login; a read-only token may only read.
func (s *Server) AddToken(token, login string, readOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = true
	if s.tokenInfo == nil {
		s.tokenInfo = map[string]tokenInfo{}
	}
	s.tokenInfo[token] = tokenInfo{login: login, readOnly: readOnly}
}

// AddPullRequest opens pull request number in owner/repo, which must have
// been added.
func (s *Server) AddPullRequest(owner, repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		panic("githubfake: AddPullRequest: unknown repository " + owner + "/" + repo)
	}
	if r.pulls == nil {
		r.pulls = map[int]bool{}
	}
	r.pulls[number] = true
}

// PostComment adds a comment by login (another user, say) directly.
func (s *Server) PostComment(owner, repo string, number int, login, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	return s.addComment(r, number, login, body).ID
}

// Comments lists pull request number's comments, oldest first.
func (s *Server) Comments(owner, repo string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	var out []Comment
	if r == nil {
		return nil
	}
	for _, c := range r.comments {
		if c.Number == number {
			out = append(out, *c)
		}
	}
	return out
}

// addComment needs s.mu held.
func (s *Server) addComment(r *repository, number int, login, body string) *Comment {
	s.nextID++
	now := s.now().UTC().Truncate(time.Second)
	c := &Comment{ID: s.nextID, Number: number, Login: login, Body: body, CreatedAt: now, UpdatedAt: now}
	r.comments = append(r.comments, c)
	return c
}

func (s *Server) commentJSON(r *http.Request, rp *repository, c *Comment) map[string]any {
	return map[string]any{
		"id":         c.ID,
		"node_id":    fmt.Sprintf("IC_%d", c.ID),
		"url":        fmt.Sprintf("http://%s/repos/%s/%s/issues/comments/%d", r.Host, rp.owner, rp.name, c.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/pull/%d#issuecomment-%d", rp.owner, rp.name, c.Number, c.ID),
		"issue_url":  fmt.Sprintf("http://%s/repos/%s/%s/issues/%d", r.Host, rp.owner, rp.name, c.Number),
		"body":       c.Body,
		"user":       map[string]any{"login": c.Login, "type": userType(c.Login)},
		"created_at": c.CreatedAt.Format(time.RFC3339),
		"updated_at": c.UpdatedAt.Format(time.RFC3339),
	}
}

func userType(login string) string {
	if strings.HasSuffix(login, "[bot]") {
		return "Bot"
	}
	return "User"
}

// serveIssues answers the comment routes; segs start "repos", owner,
// repo, "issues". s.mu is held, the token checked.
func (s *Server) serveIssues(w http.ResponseWriter, r *http.Request, segs []string, tok tokenInfo) {
	rp := s.repos[strings.ToLower(segs[1]+"/"+segs[2])]
	if rp == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	readBody := func() (string, bool) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			apiError(w, http.StatusBadRequest, "Problems reading the request body")
			return "", false
		}
		var req struct {
			Body *string `json:"body"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			apiError(w, http.StatusBadRequest, "Problems parsing JSON")
			return "", false
		}
		if req.Body == nil {
			apiError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"body\" wasn't supplied.")
			return "", false
		}
		if utf8.RuneCountInString(*req.Body) > maxCommentBody {
			apiError(w, http.StatusUnprocessableEntity, "Validation Failed", map[string]string{"resource": "IssueComment", "field": "body", "code": "custom", "message": "body is too long (maximum is 65536 characters)"})
			return "", false
		}
		return *req.Body, true
	}
	forbidden := func() bool {
		if tok.readOnly {
			apiError(w, http.StatusForbidden, "Resource not accessible by integration")
			return true
		}
		return false
	}
	switch {
	case len(segs) == 6 && segs[4] == "comments" && r.Method == http.MethodPatch:
		id, err := strconv.ParseInt(segs[5], 10, 64)
		var c *Comment
		for _, x := range rp.comments {
			if err == nil && x.ID == id {
				c = x
			}
		}
		if c == nil {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		if forbidden() {
			return
		}
		body, ok := readBody()
		if !ok {
			return
		}
		c.Body, c.UpdatedAt = body, s.now().UTC().Truncate(time.Second)
		writeJSON(w, http.StatusOK, s.commentJSON(r, rp, c))
	case len(segs) == 6 && segs[5] == "comments":
		n, err := strconv.Atoi(segs[4])
		if err != nil || !rp.pulls[n] {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.listComments(w, r, rp, n)
		case http.MethodPost:
			if forbidden() {
				return
			}
			body, ok := readBody()
			if !ok {
				return
			}
			c := s.addComment(rp, n, tok.login, body)
			writeJSON(w, http.StatusCreated, s.commentJSON(r, rp, c))
		default:
			apiError(w, http.StatusNotFound, "Not Found")
		}
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, rp *repository, n int) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	var all []*Comment
	for _, c := range rp.comments {
		if c.Number == n {
			all = append(all, c)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	last := max(1, (len(all)+perPage-1)/perPage)
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(all) && i < page*perPage; i++ {
		out = append(out, s.commentJSON(r, rp, all[i]))
	}
	if page < last {
		link := func(p int) string {
			u := *r.URL
			u.Scheme, u.Host = "http", r.Host
			qq := u.Query()
			qq.Set("page", strconv.Itoa(p))
			qq.Set("per_page", strconv.Itoa(perPage))
			u.RawQuery = qq.Encode()
			return u.String()
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`, link(page+1), link(last)))
	}
	writeJSON(w, http.StatusOK, out)
}
