package wire

import (
	"testing"
	"time"
)

// Push sets the deadline the first time, not again within the second,
// and again after Forget; with no bound it sets nothing.
func TestIdleDeadlineMovesAtMostOnceASecond(t *testing.T) {
	var sets []time.Time
	d := NewIdleDeadline(func(t time.Time) error { sets = append(sets, t); return nil }, time.Minute)
	d.Push()
	d.Push()
	if len(sets) != 1 || time.Until(sets[0]) < 59*time.Second {
		t.Fatalf("two pushes set %v", sets)
	}
	d.Forget()
	d.Push()
	if len(sets) != 2 {
		t.Fatalf("a push after Forget set nothing: %v", sets)
	}
	none := NewIdleDeadline(func(time.Time) error { t.Fatal("set with no bound"); return nil }, 0)
	none.Push()
	var zero IdleDeadline
	zero.Push()
}
