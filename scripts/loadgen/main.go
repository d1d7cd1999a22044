// Command loadgen measures a passman server under load through the real
// client package (HTTPS, bearer token): N concurrent clients issue Get
// (read mode) or Put (write mode) for a fixed duration, and it prints the
// throughput, the latency percentiles and the error rate of each mode.
//
// Client retries are off, so every failure counts as an error. Each client
// has its own client.Client (its own connection), like N separate
// processes; -shared makes them share one.
//
//	loadgen -addr https://127.0.0.1:8200 -cacert cert.pem -mode read,write
//
// Read mode first writes -secrets secrets under -prefix/r/ (the setup
// phase, not measured) and then reads them at random. Write mode writes
// round-robin over -secrets paths under -prefix/w/ (each Put a new
// version), or, with -distinct, a new secret per Put.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/secret"
)

type config struct {
	addr, token, cacert, prefix string
	clients, secrets, valueSize int
	duration, warmup, timeout   time.Duration
	modes                       []string
	distinct, shared, json      bool
	cpuprofile                  string
}

// Result is one mode's figures; -json prints it as one JSON line.
type Result struct {
	Mode       string  `json:"mode"`
	Clients    int     `json:"clients"`
	Secrets    int     `json:"secrets"`
	ValueSize  int     `json:"value_size"`
	DurationS  float64 `json:"duration_s"`
	Requests   int     `json:"requests"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	ErrorRate  float64 `json:"error_rate"`
	Throughput float64 `json:"throughput_rps"` // successful requests per second
	P50ms      float64 `json:"p50_ms"`
	P95ms      float64 `json:"p95_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var modes string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", os.Getenv("PASSMAN_ADDR"), "server `URL` (env PASSMAN_ADDR); several, comma-separated, share the clients round-robin")
	fs.StringVar(&c.token, "token", "", "bearer `TOKEN` (default env PASSMAN_TOKEN)")
	fs.StringVar(&c.cacert, "cacert", os.Getenv("PASSMAN_CACERT"), "CA certificate `FILE` (env PASSMAN_CACERT)")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration of each mode")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each mode (connections, caches)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&modes, "mode", "read", "read, write, or a comma-separated list run in order")
	fs.IntVar(&c.secrets, "secrets", 1000, "distinct secret paths")
	fs.IntVar(&c.valueSize, "value-size", 64, "value size in bytes")
	fs.StringVar(&c.prefix, "prefix", "bench", "path prefix the secrets live under")
	fs.BoolVar(&c.distinct, "distinct", false, "write mode: a new secret per Put instead of round-robin over -secrets paths")
	fs.BoolVar(&c.shared, "shared", false, "all clients share one client.Client (one connection pool)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per mode")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write the load generator's own CPU profile to `FILE` (the client side's cost, setup included)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.token == "" {
		c.token = os.Getenv("PASSMAN_TOKEN")
	}
	if c.addr == "" || c.token == "" {
		return c, errors.New("-addr and -token (or PASSMAN_ADDR and PASSMAN_TOKEN) are required")
	}
	if c.clients < 1 || c.secrets < 1 || c.valueSize < 1 || c.duration <= 0 {
		return c, errors.New("-clients, -secrets, -value-size and -duration must be positive")
	}
	for m := range strings.SplitSeq(modes, ",") {
		if m != "read" && m != "write" {
			return c, fmt.Errorf("mode %q: want read or write", m)
		}
		c.modes = append(c.modes, m)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// Several servers (a cluster): client i talks to server i mod n.
	addrs := strings.Split(cfg.addr, ",")
	if cfg.shared && len(addrs) > 1 {
		return errors.New("-shared takes one -addr")
	}
	clients := make([]*client.Client, cfg.clients)
	for i := range clients {
		if i > 0 && cfg.shared {
			clients[i] = clients[0]
			continue
		}
		c, err := client.New(client.Options{
			Addr: addrs[i%len(addrs)], Token: cfg.token, CACertFile: cfg.cacert,
			Timeout: cfg.timeout, Retries: -1, UserAgent: "passman-loadgen",
		})
		if err != nil {
			return err
		}
		clients[i] = c
	}
	value := make([]byte, cfg.valueSize)
	if _, err := rand.Read(value); err != nil {
		return err
	}
	ctx := context.Background()
	for i := range min(len(addrs), len(clients)) {
		if err := clients[i].Ready(ctx); err != nil {
			return fmt.Errorf("server %s not ready: %w", addrs[i], err)
		}
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	runID := time.Now().UTC().Format("20060102T150405")
	for _, mode := range cfg.modes {
		var op func(ctx context.Context, c *client.Client, worker int, n uint64) error
		switch mode {
		case "read":
			if err := setup(ctx, cfg, clients, value); err != nil {
				return err
			}
			op = func(ctx context.Context, c *client.Client, _ int, n uint64) error {
				_, err := c.Get(ctx, readPath(cfg.prefix, int(n%uint64(cfg.secrets))), secret.Selector{})
				return err
			}
		case "write":
			var seq atomic.Uint64
			op = func(ctx context.Context, c *client.Client, _ int, _ uint64) error {
				i := seq.Add(1) - 1
				p := fmt.Sprintf("%s/w/%06d", cfg.prefix, i%uint64(cfg.secrets))
				if cfg.distinct {
					p = fmt.Sprintf("%s/w/%s/%08d", cfg.prefix, runID, i)
				}
				_, err := c.Put(ctx, p, secret.NewValue(value), secret.PutOptions{})
				return err
			}
		}
		if cfg.warmup > 0 {
			measure(ctx, clients, cfg.warmup, op, mode == "read")
		}
		res := measure(ctx, clients, cfg.duration, op, mode == "read")
		res.Mode, res.Clients, res.Secrets, res.ValueSize = mode, cfg.clients, cfg.secrets, cfg.valueSize
		if err := report(stdout, res, cfg.json); err != nil {
			return err
		}
	}
	return nil
}

func readPath(prefix string, i int) string { return fmt.Sprintf("%s/r/%06d", prefix, i) }

// setup writes the read mode's secrets, with all clients.
func setup(ctx context.Context, cfg config, clients []*client.Client, value []byte) error {
	var next atomic.Int64
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.secrets {
					return
				}
				if _, err := c.Put(ctx, readPath(cfg.prefix, i), secret.NewValue(value), secret.PutOptions{}); err != nil {
					errs[w] = fmt.Errorf("setup: put %s: %w", readPath(cfg.prefix, i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// measure runs op on every client until d has passed and merges the
// clients' latencies (each client appends to its own slice).
func measure(ctx context.Context, clients []*client.Client, d time.Duration, op func(context.Context, *client.Client, int, uint64) error, random bool) Result {
	type worker struct {
		lat      []time.Duration
		errs     int
		firstErr error
	}
	workers := make([]worker, len(clients))
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Go(func() {
			me := &workers[w]
			me.lat = make([]time.Duration, 0, 1<<14)
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for n := uint64(0); ; n++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				k := n
				if random {
					k = rng.Uint64()
				}
				err := op(ctx, c, w, k)
				if err != nil {
					me.errs++
					if me.firstErr == nil {
						me.firstErr = err
					}
					continue
				}
				me.lat = append(me.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var res Result
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errs
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
	}
	slices.Sort(all)
	res.OK = len(all)
	res.Requests = res.OK + res.Errors
	res.DurationS = elapsed.Seconds()
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	if res.Requests > 0 {
		res.ErrorRate = float64(res.Errors) / float64(res.Requests)
	}
	res.P50ms = ms(percentile(all, 50))
	res.P95ms = ms(percentile(all, 95))
	res.P99ms = ms(percentile(all, 99))
	if len(all) > 0 {
		res.Maxms = ms(all[len(all)-1])
	}
	return res
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func report(w io.Writer, r Result, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "%-5s clients=%d secrets=%d value=%dB  %9.1f req/s  p50=%.2fms p95=%.2fms p99=%.2fms max=%.2fms  errors=%d (%.2f%%)  n=%d in %.1fs\n",
		r.Mode, r.Clients, r.Secrets, r.ValueSize, r.Throughput, r.P50ms, r.P95ms, r.P99ms, r.Maxms,
		r.Errors, 100*r.ErrorRate, r.Requests, r.DurationS)
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "%-5s first error: %s\n", r.Mode, r.FirstError)
	}
	return err
}
