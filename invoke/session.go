package invoke

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sagehost/sagehost"
)

// Stateful sessions: the container opens a session on a call whose
// SessionId is NEW_SESSION, naming it in its answer's
// X-Amzn-SageMaker-Session-Id ("ID; Expires=TIME"); later calls with that
// id go to the same instance, until the session expires or the container
// closes it (X-Amzn-SageMaker-Closed-Session-Id). The platform only
// routes: the state is the container's.
const (
	// NewSession is the SessionId that asks the container for a session.
	NewSession = "NEW_SESSION"
	// HeaderNewSessionID returns an opened session to the client.
	HeaderNewSessionID = "X-Amzn-Sagemaker-New-Session-Id"
	// HeaderClosedSessionID names a session the container closed.
	HeaderClosedSessionID = "X-Amzn-Sagemaker-Closed-Session-Id"
	// maxSessions bounds the open sessions kept, all endpoints together.
	maxSessions = 100000
)

// newSessionValue is what a container that opens a session answers in
// X-Amzn-SageMaker-Session-Id (the API's NewSessionResponseHeader).
var newSessionValue = regexp.MustCompile(`^([a-zA-Z0-9](?:-*[a-zA-Z0-9])*);\sExpires=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)$`)

type sessionKey struct {
	endpoint sagehost.EndpointKey
	id       string
}

// session is where an open session lives.
type session struct {
	variant   string
	component string // the inference component, if the session is one's
	instance  string
	expires   time.Time
}

// sessions are the open sessions of every endpoint.
type sessions struct {
	mu sync.Mutex
	m  map[sessionKey]session
}

func (s *sessions) get(k sessionKey, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[k]
	if ok && now.After(ss.expires) {
		delete(s.m, k)
		return session{}, false
	}
	return ss, ok
}

// open records a session; it reports false when too many are open.
func (s *sessions) open(k sessionKey, ss session, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[sessionKey]session{}
	}
	if len(s.m) >= maxSessions {
		for k, old := range s.m {
			if now.After(old.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxSessions {
			return false
		}
	}
	s.m[k] = ss
	return true
}

// instances returns a variant's instances; none for a nil variant.
func (v *Variant) instances() []*Instance {
	if v == nil {
		return nil
	}
	return v.Instances
}

func (s *sessions) close(k sessionKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// sessionInstance returns the variant and instance of the open session a
// call names.
func (r *Router) sessionInstance(t *Table, v *Variant, req *Request) (*Variant, *Instance, error) {
	c := req.Caller
	ss, ok := r.sessions.get(sessionKey{t.Key, req.SessionID}, time.Now())
	if !ok {
		return nil, nil, validationError("Session %s of endpoint %s of account %s does not exist: it expired or was closed, or was never opened.", req.SessionID, req.EndpointName, c.Account)
	}
	if req.InferenceComponentName != ss.component || (req.TargetVariant != "" && req.TargetVariant != ss.variant) {
		where := "variant " + ss.variant
		if ss.component != "" {
			where = "inference component " + ss.component
		}
		return nil, nil, validationError("Session %s of endpoint %s of account %s belongs to %s: it cannot be used with another variant or inference component.", req.SessionID, req.EndpointName, c.Account, where)
	}
	sv := t.variant(ss.variant)
	if ss.component != "" {
		sv = t.Components[ss.component]
	}
	for _, in := range sv.instances() {
		if in.ID == ss.instance {
			if !in.Healthy() {
				return nil, nil, sagehost.Errorf(sagehost.CodeServiceUnavailable, "The instance that holds session %s of endpoint %s of account %s is not healthy. Try again later.", req.SessionID, req.EndpointName, c.Account)
			}
			return sv, in, nil
		}
	}
	r.sessions.close(sessionKey{t.Key, req.SessionID})
	return nil, nil, validationError("Session %s of endpoint %s of account %s ended: the instance that held it is gone.", req.SessionID, req.EndpointName, c.Account)
}

// noteSession applies a container's session headers: a session it opened
// (on a NEW_SESSION call) is recorded on its instance and returned to the
// client as NewSessionId; one it closed is forgotten and returned as
// ClosedSessionId. wh (nil: nothing for the client) is the client's
// response header.
func (r *Router) noteSession(wh http.Header, t *Table, v *Variant, in *Instance, resp *http.Response, req *Request) {
	if id := resp.Header.Get(HeaderClosedSessionID); id != "" {
		r.sessions.close(sessionKey{t.Key, id})
		if wh != nil {
			wh[HeaderClosedSessionID] = []string{id}
		}
	}
	if req.SessionID != NewSession {
		return
	}
	val := strings.TrimSpace(resp.Header.Get(HeaderSessionID))
	if val == "" {
		return // the container opened no session
	}
	m := newSessionValue.FindStringSubmatch(val)
	if m == nil {
		r.Logger.Warn("container answered NEW_SESSION with a session header that is not \"ID; Expires=yyyy-mm-ddThh:mm:ssZ\"; no session opened",
			"endpoint", t.Key.Name, "instance", in.ID, "value", val)
		return
	}
	expires, _ := time.Parse("2006-01-02T15:04:05Z", m[2])
	ss := session{variant: v.Name, component: req.InferenceComponentName, instance: in.ID, expires: expires}
	if !r.sessions.open(sessionKey{t.Key, m[1]}, ss, time.Now()) {
		r.Logger.Warn("too many open sessions; no session opened", "endpoint", t.Key.Name, "instance", in.ID)
		return
	}
	if wh != nil {
		wh[HeaderNewSessionID] = []string{val}
	}
}
