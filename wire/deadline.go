package wire

import "time"

// IdleDeadline keeps a connection's read or write deadline about after
// ahead of now, moving it at most once a second: a deadline per frame
// would cost a timer update per request. The zero value does nothing.
type IdleDeadline struct {
	set   func(time.Time) error // the connection's SetReadDeadline or SetWriteDeadline
	after time.Duration
	until time.Time // the deadline last set
}

// NewIdleDeadline bounds waits to after (0: unbounded) through set.
func NewIdleDeadline(set func(time.Time) error, after time.Duration) IdleDeadline {
	return IdleDeadline{set: set, after: after}
}

// Push moves the deadline after from now, unless it was set less than a
// second ago.
func (d *IdleDeadline) Push() {
	if d.set == nil || d.after <= 0 {
		return
	}
	now := time.Now()
	if !d.until.IsZero() && d.until.Sub(now) > d.after-time.Second {
		return
	}
	d.until = now.Add(d.after)
	d.set(d.until) //nolint:errcheck // a failed set shows up as a failed read or write
}

// Forget says the deadline was set to something else: the next Push sets
// it again.
func (d *IdleDeadline) Forget() { d.until = time.Time{} }
