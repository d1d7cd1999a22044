package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// logFormat is the commit header parseLog expects: a NUL-led line (no diff
// line can start with NUL: every diff line starts with a marker or a
// keyword) of NUL-separated fields.
const logFormat = "--format=%x00%H%x00%P%x00%an%x00%ae%x00%aI"

// commitDiff is what one commit adds: the unit of scanning and caching.
type commitDiff struct {
	SHA, Author, Email, Date string
	Parents                  int
	Adds                     []addition
	Binary                   int  // binary files changed, skipped as gitleaks skips them
	Large                    int  // additions over the size limit, skipped
	Deletes                  bool // the commit deletes a file
}

// addition is one run of consecutive added lines of one file.
type addition struct {
	Path      string
	New       bool // the file is new in the commit ("new file mode")
	StartLine int
	Raw       []byte // the lines with their line endings, as gitleaks' fragments
}

// logParser reads `git log -p -U0 --cc` (or `git diff -U0`) output. Only
// what a commit adds is kept: removed lines, context and headers other than
// the new path are dropped, and in a merge only lines that are new against
// every parent (a combined diff line of all '+') count, so what a merge
// merely carries over from a branch was scanned in that branch's commit.
type logParser struct {
	r       *bufio.Reader
	line    []byte // current line without its '\n'
	eol     bool   // line ended with '\n'
	long    []byte // buffer for lines longer than the reader's buffer
	prefix  [8]byte
	maxLine int
	eof     bool
}

// newLogParser reads r through a 64 KiB buffer, a pipe's capacity: a
// larger one reads no faster from git and is held per git process for the
// whole scan; longer lines go through p.long.
func newLogParser(r io.Reader, maxLine int) *logParser {
	return &logParser{r: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine}
}

var errLineTooLong = errors.New("line too long")

// next reads a line. A line longer than maxLine is read to its end and
// reported as errLineTooLong, so the caller can skip the file it is in.
func (p *logParser) next() error {
	if p.eof {
		return io.EOF
	}
	b, err := p.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.long = append(p.long[:0], b...)
		copy(p.prefix[:], b)
		tooLong := false
		for err == bufio.ErrBufferFull {
			b, err = p.r.ReadSlice('\n')
			if !tooLong && len(p.long)+len(b) > p.maxLine {
				tooLong = true
				p.long = p.long[:0]
			}
			if !tooLong {
				p.long = append(p.long, b...)
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read git output: %w", err)
		}
		if tooLong {
			// The prefix tells the parser which kind of line it was.
			p.line, p.eol = p.prefix[:], true
			return errLineTooLong
		}
		b = p.long
	}
	if err == io.EOF {
		if len(b) == 0 {
			p.eof = true
			return io.EOF
		}
		p.eof = true
	} else if err != nil {
		return fmt.Errorf("read git output: %w", err)
	}
	p.eol = len(b) > 0 && b[len(b)-1] == '\n'
	if p.eol {
		b = b[:len(b)-1]
	}
	p.line = b
	return nil
}

// parse calls emit for each commit in the log, in output order. Without
// commit headers (git diff output) everything is one commit with an empty
// SHA.
func (p *logParser) parse(emit func(*commitDiff) error) error {
	var cur *commitDiff
	flush := func() error {
		if cur == nil {
			return nil
		}
		c := cur
		cur = nil
		return emit(c)
	}
	var (
		path      string // new path of the current file; "" when deleted or unknown
		inHunk    bool
		parents   int // columns of markers: 1, or a merge's parent count
		lineNo    int // next result line number in the hunk
		run       *addition
		runSize   int
		skipFile  bool
		fileNew   bool
		fileStart int // index in cur.Adds of the current file's first run
	)
	endRun := func() {
		if run != nil && len(run.Raw) > 0 {
			cur.Adds = append(cur.Adds, *run)
		}
		run = nil
	}
	for {
		err := p.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errLineTooLong) {
			// Only an added line over the limit skips its file; a removed
			// or carried-over one is not scanned anyway.
			if inHunk && cur != nil {
				marks := p.line[:min(parents, len(p.line))]
				switch {
				case bytes.IndexByte(marks, '-') >= 0:
				case bytes.Count(marks, []byte{'+'}) == parents:
					if !skipFile && path != "" {
						cur.Large++
					}
					run, skipFile = nil, true
					lineNo++
				default:
					endRun()
					lineNo++
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		line := p.line
		if len(line) > 0 && line[0] == 0 {
			if cur != nil {
				endRun()
			}
			if err := flush(); err != nil {
				return err
			}
			c, err := parseHeader(line[1:])
			if err != nil {
				return err
			}
			cur, inHunk, path, skipFile = c, false, "", false
			continue
		}
		if cur == nil {
			cur = &commitDiff{Parents: 1}
		}
		if inHunk && len(line) >= parents {
			marks := line[:parents]
			if bytes.IndexFunc(marks, func(r rune) bool { return r != '+' && r != '-' && r != ' ' }) < 0 {
				switch {
				case bytes.IndexByte(marks, '-') >= 0:
					// removed from a parent: not in the result
				case bytes.Count(marks, []byte{'+'}) == parents:
					if !skipFile && path != "" && bytes.IndexByte(line, 0) >= 0 {
						// binary content (git's own test is told off with
						// --text): drop what this file added, count it
						run, skipFile = nil, true
						cur.Adds = cur.Adds[:fileStart]
						cur.Binary++
					}
					if !skipFile && path != "" {
						if run == nil {
							run = &addition{Path: path, New: fileNew, StartLine: lineNo}
							runSize = 0
						}
						runSize += len(line) - parents + 1
						if runSize > p.maxLine {
							cur.Large++
							run, skipFile = nil, true
						} else {
							run.Raw = append(run.Raw, line[parents:]...)
							run.Raw = append(run.Raw, '\n')
						}
					}
					lineNo++
				default:
					// in the result but carried over from a parent
					endRun()
					lineNo++
				}
				continue
			}
			if line[0] == '\\' { // "\ No newline at end of file"
				if run != nil && len(run.Raw) > 0 && run.Raw[len(run.Raw)-1] == '\n' {
					run.Raw = run.Raw[:len(run.Raw)-1]
				}
				continue
			}
		}
		switch {
		case bytes.HasPrefix(line, []byte("diff ")):
			endRun()
			inHunk, path, skipFile, fileNew = false, "", false, false
			fileStart = len(cur.Adds)
			parents = 1
			if bytes.HasPrefix(line, []byte("diff --cc ")) || bytes.HasPrefix(line, []byte("diff --combined ")) {
				parents = max(cur.Parents, 2)
			}
		case !inHunk && bytes.HasPrefix(line, []byte("new file mode ")):
			fileNew = true
		case !inHunk && bytes.HasPrefix(line, []byte("deleted file mode ")):
			cur.Deletes = true
		case bytes.HasPrefix(line, []byte("+++ ")):
			path = diffPath(string(line[4:]))
		case bytes.HasPrefix(line, []byte("Binary files ")):
			cur.Binary++
		case bytes.HasPrefix(line, []byte("@@")):
			endRun()
			start, err := hunkStart(line)
			if err != nil {
				return err
			}
			inHunk, lineNo = true, start
		default:
			// other headers: index, mode, rename, similarity, ---
			if inHunk {
				endRun()
				inHunk = false
			}
		}
	}
	if cur != nil {
		endRun()
	}
	return flush()
}

// parseHeader parses a logFormat line (after its leading NUL).
func parseHeader(b []byte) (*commitDiff, error) {
	f := strings.Split(string(b), "\x00")
	if len(f) != 5 || len(f[0]) < 40 {
		return nil, fmt.Errorf("git log: malformed commit header")
	}
	c := &commitDiff{SHA: f[0], Author: f[2], Email: f[3], Date: f[4], Parents: 1}
	// gitleaks reports dates in UTC; %aI keeps the author's zone.
	if t, err := time.Parse(time.RFC3339, f[4]); err == nil {
		c.Date = t.UTC().Format(time.RFC3339)
	}
	if n := len(strings.Fields(f[1])); n > 1 {
		c.Parents = n
	}
	return c, nil
}

// maxLineNumber bounds line numbers read from hunk headers, so that
// adding to one cannot overflow.
const maxLineNumber = 1 << 40

// hunkStart returns the first new line of a hunk header such as
// "@@ -1,2 +3,4 @@" or, in a combined diff, "@@@ -1 -2 +3,4 @@@". Errors
// never quote the header: after its closing @@ git prints the function
// context, a line of the file.
func hunkStart(line []byte) (int, error) {
	s := string(line)
	if i := strings.Index(s[min(3, len(s)):], "@@"); i >= 0 {
		s = s[:i+min(3, len(s))]
	}
	i := strings.Index(s, " +")
	if i < 0 {
		return 0, errors.New("git log: malformed hunk header")
	}
	rest := s[i+2:]
	if j := strings.IndexAny(rest, ", "); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > maxLineNumber {
		return 0, errors.New("git log: malformed hunk header")
	}
	if n == 0 { // an empty result range starts "after line 0"
		n = 1
	}
	return n, nil
}

// diffPath decodes the path of a "+++ " line: "b/<path>", a C-quoted
// "\"b/<path>\"" for unusual names, or /dev/null for a deleted file ("").
func diffPath(s string) string {
	// git ends a name holding a space with a tab (for patch(1)).
	s = strings.TrimSuffix(s, "\t")
	if s == "/dev/null" {
		return ""
	}
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			return ""
		}
		s = u
	}
	if !strings.HasPrefix(s, "b/") {
		return ""
	}
	return s[2:]
}
