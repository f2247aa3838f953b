import HTTPTypes

extension HTTPFields {
    /// The same as `self[name]`, without its cost when the field occurs at most once (every request
    /// reads four such fields). The subscript joins the values through generic lazy-sequence code that
    /// allocates even for one value; repeated fields still get the subscript's joined form.
    func value(of name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            if found != nil { return self[name] }
            found = field.value
        }
        return found
    }
}
