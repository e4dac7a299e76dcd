package wire

// Alarm is a condition on one member that stops the cluster taking new
// orders until it clears by itself (etcd's NOSPACE, without the manual
// disarm): today only a disk that is (nearly) full.
type Alarm struct {
	Member  string // the node's id
	Kind    string // "NoSpace"
	Message string // what the node saw: free bytes and the threshold, or the failed write
	Since   int64  // unix nanoseconds, the node's clock
}

// AlarmNoSpace is Alarm.Kind for a disk under --min-free, or a log write
// that failed with ENOSPC.
const AlarmNoSpace = "NoSpace"

func (a Alarm) appendTo(dst []byte) []byte {
	dst = appendStr(dst, a.Member)
	dst = appendStr(dst, a.Kind)
	dst = appendStr(dst, a.Message)
	return appendU64(dst, uint64(a.Since))
}

func appendAlarms(dst []byte, as []Alarm) []byte {
	dst = appendU16(dst, uint16(len(as)))
	for _, a := range as {
		dst = a.appendTo(dst)
	}
	return dst
}

func (d *decoder) alarms() []Alarm {
	n := int(d.u16())
	var as []Alarm
	// Each alarm takes at least 14 bytes: do not trust n beyond that.
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) < 14 {
			d.err = ErrShortPayload
			break
		}
		as = append(as, Alarm{Member: d.str(), Kind: d.str(), Message: d.str(), Since: int64(d.u64())})
	}
	return as
}

// Alarms asks for the cluster's active alarms.
type Alarms struct{}

func (Alarms) Type() Type                 { return TypeAlarms }
func (Alarms) AppendTo(dst []byte) []byte { return dst }

// AlarmList answers Alarms and ReportAlarms: every active alarm of the
// cluster, as its leader knows them.
type AlarmList struct {
	Alarms []Alarm
}

func (AlarmList) Type() Type                   { return TypeAlarmList }
func (l AlarmList) AppendTo(dst []byte) []byte { return appendAlarms(dst, l.Alarms) }

// DecodeAlarmList decodes an AlarmList payload.
func DecodeAlarmList(b []byte) (AlarmList, error) {
	d := decoder{b: b}
	l := AlarmList{Alarms: d.alarms()}
	return l, d.finish("AlarmList")
}

// ReportAlarms tells the leader a node's own alarms (none: they cleared)
// (node to leader, twice a second). The leader answers with the cluster's.
type ReportAlarms struct {
	ID     string
	Alarms []Alarm // each with Member == ID
}

func (ReportAlarms) Type() Type { return TypeReportAlarms }
func (r ReportAlarms) AppendTo(dst []byte) []byte {
	return appendAlarms(appendStr(dst, r.ID), r.Alarms)
}

// DecodeReportAlarms decodes a ReportAlarms payload.
func DecodeReportAlarms(b []byte) (ReportAlarms, error) {
	d := decoder{b: b}
	r := ReportAlarms{ID: d.str(), Alarms: d.alarms()}
	return r, d.finish("ReportAlarms")
}
