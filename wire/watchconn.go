package wire

import (
	"context"
	"fmt"
	"net"
)

// WatchStream is one Watch on a connection of its own (a watching
// connection carries nothing else).
type WatchStream struct {
	nc net.Conn
	fr *FrameReader
}

// DialWatch connects to addr and sends req: a Watch, or a Watch a
// balancer forwards in an AsRole.
func DialWatch(ctx context.Context, addr string, opt DialOptions, req Message) (*WatchStream, error) {
	nc, err := dialServer(ctx, addr, &opt)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if _, err := nc.Write(AppendFrame(nil, 1, req)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: send watch to %s: %v", ErrConnLost, addr, err)
	}
	return &WatchStream{nc: nc, fr: NewFrameReader(nc, opt.MaxFrame)}, nil
}

// Next waits for the stream's next frame. A Compacted or an Error that
// ends the stream is returned as the error (wire.Compacted, *Error); a
// broken connection as ErrConnLost.
func (s *WatchStream) Next() (Events, error) {
	f, err := s.fr.ReadFrame()
	if err != nil {
		return Events{}, fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	m, err := Decode(f.Type, f.Payload)
	if err != nil {
		return Events{}, fmt.Errorf("watch: %w", err)
	}
	switch m := m.(type) {
	case Events:
		return m, nil
	case Compacted:
		return Events{}, m
	case *Error:
		return Events{}, m
	}
	return Events{}, fmt.Errorf("watch: unexpected %s", m.Type())
}

// Close ends the stream; a Next waiting returns.
func (s *WatchStream) Close() error { return s.nc.Close() }
