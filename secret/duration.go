package secret

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that marshals as Go duration text ("720h").
type Duration time.Duration

// String returns the Go duration text, "" for zero.
func (d Duration) String() string {
	if d == 0 {
		return ""
	}
	return time.Duration(d).String()
}

// MarshalJSON encodes the duration as a string such as "720h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: duration must be a string such as \"720h\"", ErrInvalidArgument)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses Go duration text and also a day suffix ("90d"), since
// rotation periods are usually spoken of in days. Negative values are errors.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, nil
	}
	var days int
	if n, err := fmt.Sscanf(s, "%dd", &days); err == nil && n == 1 && fmt.Sprintf("%dd", days) == s {
		if days < 0 || days > 100*365 {
			return 0, fmt.Errorf("%w: duration %q out of range", ErrInvalidArgument, s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: duration %q: want Go duration text (\"720h\") or days (\"30d\")", ErrInvalidArgument, s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%w: duration %q is negative", ErrInvalidArgument, s)
	}
	return Duration(v), nil
}
