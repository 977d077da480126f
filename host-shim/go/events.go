// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// EventType is an enum pallet_event_type.
type EventType int

// The event types (docs/host-guide.md, EVENTS).
const (
	EventLog      EventType = C.PALLET_EVENT_LOG
	EventProgress EventType = C.PALLET_EVENT_PROGRESS
	EventStep     EventType = C.PALLET_EVENT_STEP
	EventFinding  EventType = C.PALLET_EVENT_FINDING
	EventItem     EventType = C.PALLET_EVENT_ITEM
	EventResult   EventType = C.PALLET_EVENT_RESULT
)

func (t EventType) String() string {
	switch t {
	case EventLog:
		return "log"
	case EventProgress:
		return "progress"
	case EventStep:
		return "step"
	case EventFinding:
		return "finding"
	case EventItem:
		return "item"
	case EventResult:
		return "result"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// LogLevel is a PALLET_LOG_* level.
type LogLevel int

// The log levels.
const (
	LogError   LogLevel = C.PALLET_LOG_ERROR
	LogWarning LogLevel = C.PALLET_LOG_WARNING
	LogInfo    LogLevel = C.PALLET_LOG_INFO
	LogDebug   LogLevel = C.PALLET_LOG_DEBUG
)

func (l LogLevel) String() string { return C.GoString(C.pallet_log_level_name(C.int(l))) }

// SetLogLevel reports log lines at or below l (default LogWarning). Set
// it before starting goroutines that call the host.
func SetLogLevel(l LogLevel) { C.pallet_set_log_level(C.int(l)) }

// Event is a Go copy of one struct pallet_event: fields that do not apply
// to the type are zero. JSON is the event as one JSON object (what
// `pallet ... -o json` prints), or for EventItem the item; empty for logs.
type Event struct {
	Type    EventType
	Level   LogLevel // EventLog
	What    string   // "step", "retry", "failed", "progress", "summary", ...
	VM      string
	Name    string
	Step    string
	Status  string
	Message string
	Code    int // EventResult: a Status ("validated") or an Exit ("summary")
	Done    uint64
	Total   uint64
	Unit    string
	JSON    json.RawMessage
}

// sink is what a cgo.Handle given to the host points at: the caller's
// callback, and the first panic it raised (re-raised in the caller's
// goroutine once the C call has returned, never across C frames).
type sink struct {
	fn       func(Event)
	panicked interface{}
}

func (k *sink) deliver(ev Event) {
	if k.fn == nil || k.panicked != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			k.panicked = r
		}
	}()
	k.fn(ev)
}

// repanic re-raises a panic of the callback after the run returned.
func (k *sink) repanic() {
	if k.panicked != nil {
		panic(k.panicked)
	}
}

// withSink gives fn a handle for k, deleted when fn returns.
func withSink(k *sink, fn func(h C.uintptr_t)) {
	h := cgo.NewHandle(k)
	defer h.Delete()
	fn(C.uintptr_t(h))
}

// has reports whether the library's event holds the field at off.
func has(ev *C.struct_pallet_event, off, size uintptr) bool {
	return uint64(off+size) <= uint64(ev.struct_size)
}

func copyEvent(ev *C.struct_pallet_event) Event {
	var e C.struct_pallet_event
	var out Event
	out.Type = EventType(ev._type)
	out.Level = LogLevel(ev.level)
	out.What = goStr(ev.what)
	out.VM = goStr(ev.vm)
	out.Name = goStr(ev.name)
	out.Step = goStr(ev.step)
	out.Status = goStr(ev.status)
	out.Message = goStr(ev.message)
	out.Code = int(ev.code)
	out.Done = uint64(ev.done)
	out.Total = uint64(ev.total)
	out.Unit = goStr(ev.unit)
	// json is the last 1.0 field: an older, smaller event has none.
	if has(ev, unsafe.Offsetof(e.json), unsafe.Sizeof(e.json)) && ev.json != nil {
		out.JSON = json.RawMessage(C.GoString(ev.json))
	}
	return out
}

//export palletgoEvent
func palletgoEvent(ev *C.struct_pallet_event, h C.uintptr_t) {
	if h == 0 {
		globalDeliver(copyEvent(ev))
		return
	}
	cgo.Handle(h).Value().(*sink).deliver(copyEvent(ev))
}

var global struct {
	mu sync.Mutex
	fn func(Event)
}

// SetEventHandler receives the events that happen outside a plan run or
// an Inventory: loader warnings, and the log lines and progress of
// Session ops (Event.VM names the VM the op was called for). nil drops
// them. The library calls fn from its own threads, one event at a time.
func SetEventHandler(fn func(Event)) {
	global.mu.Lock()
	global.fn = fn
	global.mu.Unlock()
	on := C.int(0)
	if fn != nil {
		on = 1
	}
	C.palletgo_global_handler(on)
}

func globalDeliver(ev Event) {
	global.mu.Lock()
	fn := global.fn
	global.mu.Unlock()
	if fn != nil {
		fn(ev)
	}
}
