package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"orderly/wire"
)

// script answers each attempt with the next of its results and records
// what the loop told it.
type script struct {
	results  []error // nil: success
	tries    int
	failures []Failure
	gaveUp   bool
	unknown  bool
	why      error
	leader   bool     // what Failed answers after NotLeader
	stopOn   *Failure // Failed stops the loop on this failure
	onTry    func(n int)
}

func (s *script) Try(ctx context.Context, timeout time.Duration) (wire.Message, error) {
	n := s.tries
	s.tries++
	if s.onTry != nil {
		s.onTry(n)
	}
	if n >= len(s.results) {
		n = len(s.results) - 1
	}
	if s.results[n] == nil {
		return wire.OK{}, nil
	}
	return nil, s.results[n]
}

func (s *script) Failed(f Failure, err error) (bool, error) {
	s.failures = append(s.failures, f)
	if s.stopOn != nil && *s.stopOn == f {
		return false, errStopped
	}
	return s.leader, nil
}

var errStopped = errors.New("stopped")

func (s *script) GiveUp(last error, unknown bool, why error) error {
	s.gaveUp, s.unknown, s.why = true, unknown, why
	return fmt.Errorf("gave up: %w", last)
}

func notLeader() error { return wire.Errorf(wire.CodeNotLeader, "not the leader") }

func TestDo(t *testing.T) {
	notSent := fmt.Errorf("dial: %w", ErrNotSent)
	cases := []struct {
		name        string
		results     []error
		leader      bool
		wantErr     bool
		wantGiveUp  bool
		wantUnknown bool
		wantFails   []Failure
	}{
		{name: "answered at once", results: []error{nil}},
		{name: "redirected to a known leader", results: []error{notLeader(), nil}, leader: true, wantFails: []Failure{NotLeader}},
		{name: "lost, then answered elsewhere", results: []error{io.EOF, nil}, wantFails: []Failure{Lost}},
		{name: "busy, then answered", results: []error{wire.Errorf(wire.CodeOverloaded, "busy"), nil}, wantFails: []Failure{Busy}},
		{name: "bad request is final", results: []error{wire.Errorf(wire.CodeBadRequest, "no")}, wantErr: true},
		{name: "never sent: surely not applied", results: []error{notSent}, wantErr: true, wantGiveUp: true},
		{name: "lost until the end: outcome unknown", results: []error{io.EOF}, wantErr: true, wantGiveUp: true, wantUnknown: true},
		{name: "an unknown code: outcome unknown", results: []error{wire.Errorf(wire.CodeTimeout, "t")}, wantErr: true, wantGiveUp: true, wantUnknown: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{results: tc.results, leader: tc.leader}
			var retries, redirects atomic.Uint64
			_, err := Do(context.Background(), Policy{Timeout: 100 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
				Retries: &retries, Redirects: &redirects}, s)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if s.gaveUp != tc.wantGiveUp || (s.gaveUp && s.unknown != tc.wantUnknown) {
				t.Fatalf("gave up %v unknown %v, want %v %v", s.gaveUp, s.unknown, tc.wantGiveUp, tc.wantUnknown)
			}
			if tc.wantGiveUp && !errors.Is(s.why, ErrBudgetSpent) {
				t.Fatalf("gave up because %v, want the budget", s.why)
			}
			if len(tc.wantFails) > 0 && fmt.Sprint(s.failures[:len(tc.wantFails)]) != fmt.Sprint(tc.wantFails) {
				t.Fatalf("failures %v, want %v first", s.failures, tc.wantFails)
			}
			if retries.Load() != uint64(s.tries-1) {
				t.Fatalf("%d retries counted for %d tries", retries.Load(), s.tries)
			}
		})
	}
}

func TestCallerGoneMidAttempt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &script{results: []error{io.EOF}, onTry: func(int) { cancel() }}
	if _, err := Do(ctx, Policy{Timeout: time.Minute, MaxBackoff: 10 * time.Millisecond}, s); err == nil {
		t.Fatal("no error")
	}
	if s.tries != 1 || !s.unknown || !errors.Is(s.why, context.Canceled) || len(s.failures) != 0 {
		t.Fatalf("tries %d unknown %v why %v failures %v: want one try, unknown, canceled, the node not blamed",
			s.tries, s.unknown, s.why, s.failures)
	}
}

func TestRedirectBouncesBackOff(t *testing.T) {
	// Nodes that keep naming each other (an election under way): only the
	// first redirect goes at once; the rest wait, so the loop does not spin.
	s := &script{results: []error{notLeader()}, leader: true}
	Do(context.Background(), Policy{Timeout: 50 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}, s) //nolint:errcheck // gives up by design
	if s.tries > 20 {
		t.Fatalf("%d attempts in 50 ms: redirects are not backed off", s.tries)
	}
}

func TestAttempterStops(t *testing.T) {
	f := NotSent
	s := &script{results: []error{fmt.Errorf("%w: refused", ErrNotSent)}, stopOn: &f}
	_, err := Do(context.Background(), Policy{Timeout: time.Minute, MaxBackoff: 10 * time.Millisecond}, s)
	if !errors.Is(err, errStopped) || s.tries != 1 || s.gaveUp {
		t.Fatalf("err %v after %d tries (gave up %v): want the attempter's stop after one", err, s.tries, s.gaveUp)
	}
}

// TestRefusalAfterLostAttempt: a sure refusal answers the attempt that got
// it, not an earlier one that was lost; the call's outcome stays unknown
// (the chaos run of seed 20261207: lost, then StaleSeq or NoSpace).
func TestRefusalAfterLostAttempt(t *testing.T) {
	for _, refusal := range []error{
		wire.Errorf(wire.CodeBadRequest, "no"),
		wire.Errorf(wire.CodePermissionDenied, "no"),
		wire.Errorf(wire.CodeNoSpace, "full"),
		wire.Errorf(wire.CodeSessionExpired, "gone"),
	} {
		s := &script{results: []error{io.EOF, refusal}}
		_, err := Do(context.Background(), Policy{Timeout: time.Minute, MaxBackoff: time.Millisecond}, s)
		if err == nil || !s.gaveUp || !s.unknown || s.why != refusal || s.tries != 2 {
			t.Errorf("lost, then %v: err %v, gave up %v unknown %v why %v after %d tries; want unknown, ended by the refusal",
				refusal, err, s.gaveUp, s.unknown, s.why, s.tries)
		}
		s = &script{results: []error{refusal}}
		if _, err := Do(context.Background(), Policy{Timeout: time.Minute, MaxBackoff: time.Millisecond}, s); err != refusal || s.gaveUp {
			t.Errorf("%v alone: err %v gave up %v; want the refusal itself", refusal, err, s.gaveUp)
		}
	}
}
