import Foundation

/// What a Shapes caption states about one object; `size` is nil when the caption does not say.
public struct ParsedObject: Equatable, Sendable {
    public var color: ShapeColor
    public var shape: ShapeKind
    public var size: SizeClass?

    public init(color: ShapeColor, shape: ShapeKind, size: SizeClass?) {
        self.color = color
        self.shape = shape
        self.size = size
    }
}

/// What a Shapes caption states: one object and its grid position, or two objects and their relation.
public struct ParsedCaption: Equatable, Sendable {
    /// One or two objects, in caption order.
    public var objects: [ParsedObject]
    /// Set for one object.
    public var position: GridPosition?
    /// Set for two objects: "objects[0] {relation} objects[1]".
    public var relation: Relation?
    /// The template the caption follows.
    public var template: ShapesTemplate

    public init(objects: [ParsedObject], position: GridPosition?, relation: Relation?, template: ShapesTemplate) {
        self.objects = objects
        self.position = position
        self.relation = relation
        self.template = template
    }
}

/// Writing and reading Shapes captions (docs/design.md §3).
public enum ShapesCaption {
    /// The caption of `objects` (one or two) under `template`, with `position` for one object or
    /// `relation` for two.
    public static func make(objects: [SceneObject], position: GridPosition?, relation: Relation?,
                            template: ShapesTemplate) -> String {
        func phrase(_ o: SceneObject, sized: Bool) -> String {
            sized ? "a \(o.size.name) \(o.color.name) \(o.shape.name)" : "a \(o.color.name) \(o.shape.name)"
        }
        switch template {
        case .sizedObject, .unsizedObject, .thereIs:
            precondition(objects.count == 1 && position != nil, "template \(template) needs one object and a position")
            let body = "\(phrase(objects[0], sized: template.statesSizes)) \(position!.phrase)"
            return template == .thereIs ? "there is " + body : body
        case .sizedPair, .unsizedPair:
            precondition(objects.count == 2 && relation != nil, "template \(template) needs two objects and a relation")
            let sized = template.statesSizes
            return "\(phrase(objects[0], sized: sized)) \(relation!.phrase) \(phrase(objects[1], sized: sized))"
        }
    }

    /// The attributes a caption states, or nil if it does not follow one of the Shapes templates.
    /// Case and surrounding or repeated white space are ignored, "an" is accepted for "a", and a
    /// final full stop is allowed.
    public static func parse(_ caption: String) -> ParsedCaption? {
        var text = caption.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasSuffix(".") { text.removeLast() }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        var i = 0
        var thereIs = false
        if words.count >= 2 && words[0] == "there" && words[1] == "is" {
            thereIs = true
            i = 2
        }
        guard let first = parseObject(words, &i) else { return nil }

        if let position = parsePhrase(words, &i, GridPosition.allCases, \.phrase) {
            guard i == words.count else { return nil }
            let template: ShapesTemplate
            if thereIs {
                guard first.size != nil else { return nil }
                template = .thereIs
            } else {
                template = first.size != nil ? .sizedObject : .unsizedObject
            }
            return ParsedCaption(objects: [first], position: position, relation: nil, template: template)
        }
        guard !thereIs, let relation = parsePhrase(words, &i, Relation.allCases, \.phrase),
              let second = parseObject(words, &i), i == words.count,
              (first.size == nil) == (second.size == nil) else { return nil }
        return ParsedCaption(objects: [first, second], position: nil, relation: relation,
                             template: first.size != nil ? .sizedPair : .unsizedPair)
    }

    /// "a [size] color shape" starting at words[i]; advances i past it.
    private static func parseObject(_ words: [String], _ i: inout Int) -> ParsedObject? {
        var j = i
        guard j < words.count, words[j] == "a" || words[j] == "an" else { return nil }
        j += 1
        var size: SizeClass?
        if j < words.count, let s = SizeClass.allCases.first(where: { $0.name == words[j] }) {
            size = s
            j += 1
        }
        guard j + 1 < words.count,
              let color = ShapeColor.allCases.first(where: { $0.name == words[j] }),
              let shape = ShapeKind.allCases.first(where: { $0.name == words[j + 1] }) else { return nil }
        i = j + 2
        return ParsedObject(color: color, shape: shape, size: size)
    }

    /// The longest case whose phrase matches the words starting at words[i]; advances i past it.
    private static func parsePhrase<T>(_ words: [String], _ i: inout Int, _ cases: [T],
                                       _ phrase: KeyPath<T, String>) -> T? {
        var best: (T, Int)?
        for c in cases {
            let p = c[keyPath: phrase].split(separator: " ").map(String.init)
            guard i + p.count <= words.count, Array(words[i..<(i + p.count)]) == p else { continue }
            if best == nil || p.count > best!.1 { best = (c, p.count) }
        }
        guard let (c, n) = best else { return nil }
        i += n
        return c
    }
}

extension ParsedCaption {
    /// Whether `scene` shows what this caption states: the same colours and shapes in the same
    /// order, the same position or relation, and the same sizes wherever the caption states them.
    public func isSatisfied(by scene: ShapesScene) -> Bool {
        guard scene.objects.count == objects.count, scene.position == position,
              scene.relation == relation else { return false }
        for (p, o) in zip(objects, scene.objects) {
            if p.color != o.color || p.shape != o.shape { return false }
            if let s = p.size, s != o.size { return false }
        }
        return true
    }
}
