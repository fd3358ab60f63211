package embedded

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// saveAutoCreatedTopics makes the topics that clients create through
// metadata requests survive a kill of the broker.
//
// kfake saves its list of topics to the data directory when a topic is
// created with CreateTopics, but not when a metadata request creates it,
// so a kill lost such a topic, and every record in it, at the next load.
// A metadata request that may create topics now first creates those it
// names that do not exist yet with kfake's CreateTopic (which saves the
// list); kfake then finds them there when it answers the request.
func saveAutoCreatedTopics(cl *kfake.Cluster) {
	var known sync.Map // topic names known to exist, saved
	cl.ControlKey(kmsg.Metadata.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.MetadataRequest)
		if !req.AllowAutoTopicCreation {
			return nil, nil, false
		}
		var names []string
		for _, t := range req.Topics {
			if t.Topic != nil {
				if _, ok := known.Load(*t.Topic); !ok {
					names = append(names, *t.Topic)
				}
			}
		}
		if len(names) == 0 {
			return nil, nil, false
		}
		// CreateTopic runs in kfake's request loop, which runs this
		// function: let the loop go on while it does
		cl.SleepControl(func() {
			for _, name := range names {
				if cl.TopicInfo(name) == nil {
					if err := cl.CreateTopic(name, 0, nil); err != nil {
						continue // an invalid name: kfake answers for it
					}
				}
				known.Store(name, true)
			}
		})
		return nil, nil, false
	})
	cl.ControlKey(kmsg.DeleteTopics.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		for _, t := range r.(*kmsg.DeleteTopicsRequest).Topics {
			if t.Topic == nil {
				known.Clear() // deleted by topic id
				break
			}
			known.Delete(*t.Topic)
		}
		return nil, nil, false
	})
}
