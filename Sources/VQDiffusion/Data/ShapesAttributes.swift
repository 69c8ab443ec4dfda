import Foundation

// The attribute model of the Shapes dataset (docs/design.md §3): what a scene contains, in the words the
// captions use. Evaluators (attribute heads, alignment scoring) build on these types.

/// The five shapes. Each is drawn inside a box of extent e centred on the object's centre.
public enum ShapeKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Diameter e.
    case circle
    /// Side e, axis-aligned.
    case square
    /// Apex up, base e, height e.
    case triangle
    /// A square rotated 45°, diagonal e.
    case diamond
    /// A plus sign: arm span e, arm thickness e/3.
    case cross

    /// The word used in captions.
    public var name: String {
        switch self {
        case .circle: return "circle"
        case .square: return "square"
        case .triangle: return "triangle"
        case .diamond: return "diamond"
        case .cross: return "cross"
        }
    }

    public var description: String { name }
}

/// The eight palette colours. Each object's colour is the palette value with every channel
/// jittered uniformly by ±12.
public enum ShapeColor: Int, CaseIterable, Sendable, CustomStringConvertible {
    case red, green, blue, yellow, magenta, cyan, orange, white

    /// The word used in captions.
    public var name: String {
        switch self {
        case .red: return "red"
        case .green: return "green"
        case .blue: return "blue"
        case .yellow: return "yellow"
        case .magenta: return "magenta"
        case .cyan: return "cyan"
        case .orange: return "orange"
        case .white: return "white"
        }
    }

    /// The palette value (R, G, B) before jitter.
    public var rgb: (r: Float, g: Float, b: Float) {
        switch self {
        case .red: return (220, 40, 40)
        case .green: return (40, 190, 60)
        case .blue: return (50, 90, 230)
        case .yellow: return (230, 210, 40)
        case .magenta: return (210, 50, 210)
        case .cyan: return (40, 210, 210)
        case .orange: return (240, 140, 30)
        case .white: return (235, 235, 235)
        }
    }

    /// Per-channel jitter half-width: an object's channel lies in palette ± 12.
    public static let jitter: Float = 12

    public var description: String { name }
}

/// Small (e ∈ [0.22 S, 0.28 S]) or large (e ∈ [0.40 S, 0.48 S]).
public enum SizeClass: Int, CaseIterable, Sendable, CustomStringConvertible {
    case small, large

    public var name: String { self == .small ? "small" : "large" }

    /// The extent range as fractions of the canvas side.
    public var extentFraction: ClosedRange<Float> {
        self == .small ? 0.22...0.28 : 0.40...0.48
    }

    public var description: String { name }
}

/// The 3×3 grid positions of a single object, row by row.
public enum GridPosition: Int, CaseIterable, Sendable, CustomStringConvertible {
    case topLeft, top, topRight, left, center, right, bottomLeft, bottom, bottomRight

    /// Column 0…2 (left to right).
    public var column: Int { rawValue % 3 }
    /// Row 0…2 (top to bottom).
    public var row: Int { rawValue / 3 }

    /// The phrase used in captions.
    public var phrase: String {
        switch self {
        case .topLeft: return "in the top left corner"
        case .top: return "at the top"
        case .topRight: return "in the top right corner"
        case .left: return "on the left"
        case .center: return "in the center"
        case .right: return "on the right"
        case .bottomLeft: return "in the bottom left corner"
        case .bottom: return "at the bottom"
        case .bottomRight: return "in the bottom right corner"
        }
    }

    /// A short name (e.g. "top left"), for tables.
    public var name: String {
        switch self {
        case .topLeft: return "top left"
        case .top: return "top"
        case .topRight: return "top right"
        case .left: return "left"
        case .center: return "center"
        case .right: return "right"
        case .bottomLeft: return "bottom left"
        case .bottom: return "bottom"
        case .bottomRight: return "bottom right"
        }
    }

    public var description: String { name }
}

/// How the first object of a pair stands to the second: "A {relation} B".
public enum Relation: Int, CaseIterable, Sendable, CustomStringConvertible {
    case leftOf, rightOf, above, below

    /// The phrase used in captions.
    public var phrase: String {
        switch self {
        case .leftOf: return "to the left of"
        case .rightOf: return "to the right of"
        case .above: return "above"
        case .below: return "below"
        }
    }

    /// True for left of / right of (separated along x); false for above / below (along y).
    public var isHorizontal: Bool { self == .leftOf || self == .rightOf }

    public var description: String { phrase }
}

/// The caption templates, drawn uniformly among those that fit the scene.
public enum ShapesTemplate: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// "a {size} {color} {shape} {pos}"
    case sizedObject
    /// "a {color} {shape} {pos}"
    case unsizedObject
    /// "there is a {size} {color} {shape} {pos}"
    case thereIs
    /// "a {size} {color} {shape} {rel} a {size} {color} {shape}"
    case sizedPair
    /// "a {color} {shape} {rel} a {color} {shape}"
    case unsizedPair

    public static let singleObject: [ShapesTemplate] = [.sizedObject, .unsizedObject, .thereIs]
    public static let pair: [ShapesTemplate] = [.sizedPair, .unsizedPair]

    /// Whether captions of this template state the sizes.
    public var statesSizes: Bool { self != .unsizedObject && self != .unsizedPair }

    public var description: String {
        switch self {
        case .sizedObject: return "a {size} {color} {shape} {pos}"
        case .unsizedObject: return "a {color} {shape} {pos}"
        case .thereIs: return "there is a {size} {color} {shape} {pos}"
        case .sizedPair: return "a {size} {color} {shape} {rel} a {size} {color} {shape}"
        case .unsizedPair: return "a {color} {shape} {rel} a {color} {shape}"
        }
    }
}

/// One object of a scene. Coordinates are in pixels, continuous, origin at the top-left corner of
/// the canvas; pixel (x, y) covers [x, x+1) × [y, y+1).
public struct SceneObject: Equatable, Sendable {
    public var shape: ShapeKind
    public var color: ShapeColor
    public var size: SizeClass
    public var centerX: Float
    public var centerY: Float
    /// Side of the object's bounding box.
    public var extent: Float
    /// The jittered colour actually drawn (R, G, B), each within ±12 of the palette value.
    public var red: Float, green: Float, blue: Float

    public init(shape: ShapeKind, color: ShapeColor, size: SizeClass, centerX: Float, centerY: Float,
                extent: Float, red: Float, green: Float, blue: Float) {
        self.shape = shape
        self.color = color
        self.size = size
        self.centerX = centerX
        self.centerY = centerY
        self.extent = extent
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// The bounding box edges.
    public var minX: Float { centerX - extent / 2 }
    public var maxX: Float { centerX + extent / 2 }
    public var minY: Float { centerY - extent / 2 }
    public var maxY: Float { centerY + extent / 2 }

    /// Whether this object's colour–shape pair is one of the held-out pairs.
    public var isHeldOut: Bool { ShapesScene.isHeldOut(color, shape) }
}

/// Everything a Shapes sample says about itself, apart from the pixels.
public struct ShapesScene: Equatable, Sendable {
    /// One or two objects; for two, the caption reads "objects[0] {relation} objects[1]".
    public var objects: [SceneObject]
    /// The grid cell of a single object; nil for pairs.
    public var position: GridPosition?
    /// The relation of a pair; nil for a single object.
    public var relation: Relation?
    public var template: ShapesTemplate
    public var caption: String

    public init(objects: [SceneObject], position: GridPosition?, relation: Relation?,
                template: ShapesTemplate, caption: String) {
        self.objects = objects
        self.position = position
        self.relation = relation
        self.template = template
        self.caption = caption
    }

    /// The colour–shape pairs that never occur in train, val or test; every novel scene has one.
    public static let heldOutPairs: [(color: ShapeColor, shape: ShapeKind)] = [
        (.yellow, .triangle), (.cyan, .cross), (.white, .circle), (.orange, .square), (.magenta, .diamond),
    ]

    public static func isHeldOut(_ color: ShapeColor, _ shape: ShapeKind) -> Bool {
        heldOutPairs.contains { $0.color == color && $0.shape == shape }
    }

    /// Whether any object has a held-out colour–shape pair.
    public var containsHeldOutPair: Bool { objects.contains { $0.isHeldOut } }
}

/// A rendered Shapes sample: the image, its caption, its attributes.
public struct ShapesSample: Equatable, Sendable {
    /// S×S RGB.
    public var image: DatasetImage
    public var scene: ShapesScene

    public init(image: DatasetImage, scene: ShapesScene) {
        self.image = image
        self.scene = scene
    }

    public var caption: String { scene.caption }
    public var objects: [SceneObject] { scene.objects }
    public var position: GridPosition? { scene.position }
    public var relation: Relation? { scene.relation }
    public var template: ShapesTemplate { scene.template }
}
