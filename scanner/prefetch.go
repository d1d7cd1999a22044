package scanner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
)

// blobPrefetch reads blobs ("commit:path") through one git cat-file
// --batch while a range's scan goes on: started at the scan's first
// finding, it has read the base versions of the files with findings by
// the time the last commit is scanned, so the check against the base
// (dropPresentIn) waits for no git process. A scan without findings never
// starts it.
type blobPrefetch struct {
	g     *gitRepo
	ctx   context.Context
	limit int64

	// The scan's emitting goroutine's alone.
	in    chan string
	asked map[string]bool

	done   chan struct{}
	res    map[string][]byte // after done
	err    error             // after done
	waited bool
}

func newBlobPrefetch(ctx context.Context, g *gitRepo, limit int64) *blobPrefetch {
	return &blobPrefetch{g: g, ctx: ctx, limit: limit, asked: map[string]bool{}}
}

// add asks for spec's blob, starting git on the first call. A spec with a
// line break cannot be written to the batch: blobs reads it later.
func (p *blobPrefetch) add(spec string) {
	if p.waited || p.asked[spec] || strings.ContainsAny(spec, "\n\r") {
		return
	}
	if p.in == nil {
		p.in = make(chan string, 64)
		p.done = make(chan struct{})
		go p.run()
	}
	select {
	case p.in <- spec:
		p.asked[spec] = true
	case <-p.done: // git failed: blobs reads the rest
	}
}

// run answers the specs one at a time: cat-file flushes each answer, and
// one request in flight cannot fill both pipes.
func (p *blobPrefetch) run() {
	defer close(p.done)
	p.res = map[string][]byte{}
	fail := func(err error) {
		p.err = err
		for range p.in { // let add and wait go on
		}
	}
	cmd := p.g.command(p.ctx, "cat-file", "--batch")
	var stderr boundedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fail(fmt.Errorf("git cat-file: %w", err))
		return
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(fmt.Errorf("git cat-file: %w", err))
		return
	}
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("git cat-file: %w", err))
		return
	}
	r := bufio.NewReader(out)
	for spec := range p.in {
		if _, err = io.WriteString(stdin, spec+"\n"); err == nil {
			err = readBatch(r, []string{spec}, p.limit, p.res)
		}
		if err != nil {
			break
		}
	}
	_ = stdin.Close()
	if err != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("git cat-file: %w: %s", werr, stderr.String())
	}
	if err != nil {
		fail(err)
	}
}

// wait ends the prefetch and returns the blobs read and the specs asked
// for (a spec asked for and absent names no blob, or one over the limit).
// Without any add (every finding came from the cache, or named a path
// the batch cannot take) it returns empty maps, for the caller to add to.
// It may be called again; add may not be called after it.
func (p *blobPrefetch) wait() (map[string][]byte, map[string]bool, error) {
	if p.in == nil {
		return map[string][]byte{}, map[string]bool{}, nil
	}
	if !p.waited {
		close(p.in)
		p.waited = true
	}
	<-p.done
	if p.err != nil {
		return nil, nil, p.err
	}
	return p.res, p.asked, nil
}
