package fpindex

import "math"

// The export rule: a value is exported only if it is at least
// MinValueLength bytes long and EstimateBits credits it with at least
// MinEntropyBits. A weaker value's fingerprint (even a truncated one, with
// the detection key beside it) narrows an offline dictionary search, so it
// is left out and counted in File.Withheld instead: a scan does not look
// for it, and the count says how many such values the scope holds.
const (
	MinValueLength = 16
	MinEntropyBits = 64
)

// Exportable reports whether v passes the export rule.
func Exportable(v []byte) bool {
	return len(v) >= MinValueLength && EstimateBits(v) >= MinEntropyBits
}

// EstimateBits is a deliberately simple upper-bound estimate of v's
// entropy: the length of v's shortest period (so "abcabcabc" counts as
// "abc") times log2 of the alphabet its character classes span (lower 26,
// upper 26, digits 10, other printable ASCII 33, control bytes 33, bytes
// above 0x7f 128). It refuses the obviously weak — short, one class,
// repeated — and credits a generated value with about what it has (32
// characters from 62: 190 bits). It cannot see a dictionary word or a
// human pattern: a passphrase of words passes, which is why the shareable
// export carries only truncated fingerprints anyway.
func EstimateBits(v []byte) float64 {
	if len(v) == 0 {
		return 0
	}
	var lower, upper, digit, punct, ctrl, high bool
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		case c >= 0x80:
			high = true
		case c < 0x20 || c == 0x7f:
			ctrl = true
		default:
			punct = true
		}
	}
	pool := 0
	for _, cl := range []struct {
		present bool
		size    int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {punct, 33}, {ctrl, 33}, {high, 128}} {
		if cl.present {
			pool += cl.size
		}
	}
	return float64(period(v)) * math.Log2(float64(pool))
}

// period returns the length of v's shortest period p (v[i] == v[i-p] for
// every i >= p): v is determined by its first p bytes. It is the
// Knuth–Morris–Pratt failure function's complement, O(len(v)).
func period(v []byte) int {
	fail := make([]int, len(v))
	for i, k := 1, 0; i < len(v); i++ {
		for k > 0 && v[i] != v[k] {
			k = fail[k-1]
		}
		if v[i] == v[k] {
			k++
		}
		fail[i] = k
	}
	return len(v) - fail[len(v)-1]
}
