package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderly/wire"
)

// Source says where a follower reads the feed.
type Source struct {
	// Pick names the address of the next attempt (attempt 0 first, then
	// after each failure).
	Pick func(attempt int) string
	Dial wire.DialOptions
	// Wrap, if set, wraps each Watch sent (a balancer's AsRole).
	Wrap func(wire.Watch) wire.Message
	// Failed, if set, is told why an attempt ended before it resumes.
	Failed func(addr string, err error)
}

const (
	followBackoff    = 50 * time.Millisecond
	followMaxBackoff = time.Second
)

// Follow calls fn with every Events frame of the feed from w.From on (0:
// from now), in order and each entry once: after a lost connection it
// resumes on the next address from the last frame's Through + 1. It
// returns when ctx ends (nil), fn fails (its error), or the feed answers
// Compacted or refuses the watch (that answer).
func Follow(ctx context.Context, src Source, w wire.Watch, fn func(addr string, e wire.Events) error) error {
	backoff := followBackoff
	for attempt := 0; ; attempt++ {
		addr := src.Pick(attempt)
		var req wire.Message = w
		if src.Wrap != nil {
			req = src.Wrap(w)
		}
		err := followOnce(ctx, addr, src.Dial, req, func(e wire.Events) error {
			backoff = followBackoff
			w.From = e.Through + 1
			return fn(addr, e)
		})
		if ctx.Err() != nil {
			return nil
		}
		var fnErr callbackError
		var c wire.Compacted
		var we *wire.Error
		switch {
		case errors.As(err, &fnErr):
			return fnErr.err
		case errors.As(err, &c):
			return c
		case errors.As(err, &we) && (we.Code == wire.CodeBadRequest || we.Code == wire.CodePermissionDenied):
			return we
		}
		if src.Failed != nil {
			src.Failed(addr, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, followMaxBackoff)
	}
}

// callbackError carries fn's error out of followOnce unmistaken for the
// stream's.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func followOnce(ctx context.Context, addr string, dial wire.DialOptions, req wire.Message, fn func(wire.Events) error) error {
	s, err := wire.DialWatch(ctx, addr, dial, req)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	defer s.Close()
	for {
		e, err := s.Next()
		if err != nil {
			return fmt.Errorf("watch on %s: %w", addr, err)
		}
		if err := fn(e); err != nil {
			return callbackError{err}
		}
	}
}
