package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Scheduler metric names.
const (
	NameSchedulerIsLeader      = "passman_scheduler_is_leader"
	NameSchedulerLeaderChanges = "passman_scheduler_leader_changes_total"
	NameSchedulerLag           = "passman_scheduler_lag_seconds"
	NameSchedulerRuns          = "passman_scheduler_runs_total"
)

// Scheduler run outcomes (label outcome of passman_scheduler_runs_total).
const (
	RunOK     = "ok"
	RunFailed = "failed"
)

// Scheduler holds the scheduler's collectors, registered in a Metrics'
// registry. Like Metrics, every method is safe on nil.
type Scheduler struct {
	isLeader      prometheus.Gauge
	leaderChanges prometheus.Counter
	lag           prometheus.Gauge
	runs          *prometheus.CounterVec
}

// NewScheduler registers the scheduler's collectors in m; nil for a nil m.
// Call it once per Metrics.
func NewScheduler(m *Metrics) *Scheduler {
	if m == nil {
		return nil
	}
	s := &Scheduler{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameSchedulerIsLeader,
			Help: "1 while this server leads the scheduler (runs due rotations, revocations and token reaping), else 0.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameSchedulerLeaderChanges,
			Help: "Times this server gained or lost the scheduler's leadership.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameSchedulerLag,
			Help: "How late the last scheduler run started after it was due (the previous run's start plus the interval); after a failover, the takeover delay.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSchedulerRuns,
			Help: "Scheduler runs by outcome: ok, or failed (a rotation, revocation or reaping failed, or the run stopped).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(s.isLeader, s.leaderChanges, s.lag, s.runs)
	return s
}

// SetLeader records whether this server leads, counting a change.
func (s *Scheduler) SetLeader(leads bool) {
	if s == nil {
		return
	}
	v := 0.0
	if leads {
		v = 1
	}
	s.isLeader.Set(v)
	s.leaderChanges.Inc()
}

// ObserveRun records one run and how late it started.
func (s *Scheduler) ObserveRun(lag time.Duration, ok bool) {
	if s == nil {
		return
	}
	s.lag.Set(max(lag, 0).Seconds())
	outcome := RunOK
	if !ok {
		outcome = RunFailed
	}
	s.runs.WithLabelValues(outcome).Inc()
}
