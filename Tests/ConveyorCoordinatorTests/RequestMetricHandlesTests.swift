@testable import ConveyorCoordinator
import HTTPTypes
import Testing

@Suite("The HTTP middleware's metric handles")
struct RequestMetricHandlesTests {
    @Test("a route, method and status answered again reuses the handles made the first time")
    func repeatedKeyReusesHandles() {
        let handles = RequestMetricHandles()
        let first = handles.for(route: "/v1/tasks", method: .post, status: 201)
        let again = handles.for(route: "/v1/tasks", method: .post, status: 201)
        #expect(first.requests === again.requests)
        #expect(first.duration === again.duration)
        let refused = handles.for(route: "/v1/tasks", method: .post, status: 422)
        #expect(refused.requests !== first.requests)
    }

    @Test("only a POST to a submission route is timed as an enqueue")
    func enqueueTimerOnlyForSubmissions() {
        let handles = RequestMetricHandles()
        #expect(handles.for(route: "/v1/tasks", method: .post, status: 201).enqueueDuration != nil)
        #expect(handles.for(route: "/v1/tasks/batch", method: .post, status: 201).enqueueDuration != nil)
        #expect(handles.for(route: "/v1/tasks/{id}", method: .get, status: 200).enqueueDuration == nil)
        #expect(handles.for(route: "/v1/tasks", method: .get, status: 200).enqueueDuration == nil)
    }
}
