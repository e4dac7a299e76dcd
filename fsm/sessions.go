package fsm

import (
	"errors"
	"sort"
	"time"
)

// Sessions are capped (SetLimits): past MaxSessions the least recently
// written session is evicted, the same one on every replica. "Least
// recently" is by leader time: a session's LastSeen is the highest leader
// time applied when it last wrote, which never goes down, so the list of
// sessions in write order is also in LastSeen order and its head is the
// one to evict, or to expire. Ties (the same leader time) keep the order
// of the log, which every replica applies alike; SetLimits puts ties in
// client id order once, so that replicas that restored an older snapshot
// (sorted by client id) agree from then on.

// ErrSessionExpired: a write with seq above 1 from a client that has no
// session (it expired or was evicted): it may be a retry of a write that
// was applied, which can no longer be told, so it is not applied (the
// client answers its caller that the outcome is unknown, and starts a new
// session). Only once SetLimits has been applied: before it, such a write
// was applied as a new session's first, as version-1 nodes do.
var ErrSessionExpired = errors.New("fsm: the client's session expired or was evicted")

// ErrTooManySessions: the cap is reached and every session wrote within
// the eviction idle time: a new client is refused (not applied) rather
// than evict a session whose client may be retrying a write right now.
var ErrTooManySessions = errors.New("fsm: too many client sessions; try again later")

// DefaultEvictIdle is how long, in leader time, a session must have been
// idle before the cap may evict it. A client retries a write for seconds
// (10 s by default), so a retry always finds its session, and a retry of
// a session's first write (seq 1, which cannot be told from a new
// client's) is never applied twice because of the cap.
const DefaultEvictIdle = time.Minute

// sessionList links every session, least recently written first.
type sessionList struct {
	head, tail *session
}

func (l *sessionList) pushBack(s *session) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *sessionList) remove(s *session) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// touch moves s to the back: it was just written.
func (l *sessionList) touch(s *session) {
	if l.tail == s {
		return
	}
	l.remove(s)
	l.pushBack(s)
}

// addSession starts a session for client id; at the cap it evicts the
// least recently written session, or refuses if that one is younger than
// MinEvictIdle.
func (s *state) addSession(id uint64) (*session, error) {
	if s.maxSessions > 0 && len(s.sessions) >= int(s.maxSessions) {
		if head := s.lru.head; head != nil && head.LastSeen > s.now-int64(s.evictIdle) {
			return nil, ErrTooManySessions
		}
	}
	sess := &session{id: id}
	s.sessions[id] = sess
	s.lru.pushBack(sess)
	s.evictOverCap()
	return sess, nil
}

func (s *state) dropSession(sess *session) {
	delete(s.sessions, sess.id)
	s.lru.remove(sess)
}

func (s *state) evictOverCap() {
	for s.maxSessions > 0 && len(s.sessions) > int(s.maxSessions) && s.lru.head != nil {
		s.dropSession(s.lru.head)
		s.evicted++
	}
}

// setLimits applies SetLimits: from now on sessions are capped and a
// write of a client without a session must be its first.
func (s *state) setLimits(l SetLimits) {
	if !s.limitsSet {
		s.normalizeSessionOrder()
	}
	s.limitsSet, s.maxSessions, s.evictIdle = true, l.MaxSessions, l.EvictIdle
	s.evictOverCap()
}

// normalizeSessionOrder relinks the sessions by (LastSeen, client id).
func (s *state) normalizeSessionOrder() {
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].LastSeen != all[j].LastSeen {
			return all[i].LastSeen < all[j].LastSeen
		}
		return all[i].id < all[j].id
	})
	s.lru = sessionList{}
	for _, sess := range all {
		s.lru.pushBack(sess)
	}
}
