package provider

import (
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * 24 * time.Hour: "30d", time.Hour: "1h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s",
		time.Hour + time.Second: "1h0m1s", 36 * time.Hour: "36h",
	} {
		got := formatDuration(secret.Duration(d))
		if got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
		back, err := secret.ParseDuration(got)
		if err != nil || time.Duration(back) != d {
			t.Errorf("%q parses to %s, %v", got, time.Duration(back), err)
		}
	}
}
