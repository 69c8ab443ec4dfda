import Engine

/// Draws a Shapes scene (objects, layout, caption) from a generator, following docs/design.md §3.
///
/// The draws, in order: one or two objects (1/2 each); the colour–shape pairs; for a pair the
/// relation; sizes and extents (a pair that cannot be placed is redrawn); each object's colour
/// jitter; the placement; the caption template. Rendering continues from the same generator.
/// Redrawing pairs that do not fit makes large–large pairs rarer than 1/4 (at S = 32 about 53 % of
/// the objects in pairs are small); single objects are small or large with probability 1/2.
public enum ShapesLayout {
    /// Smallest and largest canvas side; the side must be a multiple of 8.
    public static let sizeRange = 16...128
    /// Free pixels between an object's bounding box and the canvas edge.
    public static let margin: Float = 1
    /// Free pixels between the boxes of a pair along the relation's axis.
    public static let separation: Float = 1
    /// The largest difference of a pair's centres across the relation's axis, as a fraction of S.
    public static let acrossTolerance: Float = 0.15

    /// All 40 colour–shape pairs, colour-major.
    public static let allPairs: [(color: ShapeColor, shape: ShapeKind)] =
        ShapeColor.allCases.flatMap { c in ShapeKind.allCases.map { (color: c, shape: $0) } }
    /// The 35 pairs allowed in train, val and test.
    public static let seenPairs = allPairs.filter { !ShapesScene.isHeldOut($0.color, $0.shape) }

    /// Whether `size` is a valid canvas side (a multiple of 8 from 16 to 128).
    public static func isValidSize(_ size: Int) -> Bool { sizeRange.contains(size) && size % 8 == 0 }

    /// A scene on an S×S canvas. `novel` selects the held-out pairs: every novel scene has at least
    /// one, and no other scene has any.
    public static func scene(size S: Int, novel: Bool, using rng: inout RandomGenerator) -> ShapesScene {
        precondition(isValidSize(S), "canvas side \(S) is not a multiple of 8 in \(sizeRange)")
        let s = Float(S)
        let twoObjects = rng.int(below: 2) == 1

        // Colour–shape pairs.
        var pairs: [(color: ShapeColor, shape: ShapeKind)]
        if !twoObjects {
            pairs = [novel ? ShapesScene.heldOutPairs[rng.int(below: ShapesScene.heldOutPairs.count)]
                           : seenPairs[rng.int(below: seenPairs.count)]]
        } else {
            let pool = novel ? allPairs : seenPairs
            while true {
                let a = pool[rng.int(below: pool.count)]
                let b = pool[rng.int(below: pool.count)]
                if a.color == b.color && a.shape == b.shape { continue }
                if novel && !ShapesScene.isHeldOut(a.color, a.shape) && !ShapesScene.isHeldOut(b.color, b.shape) { continue }
                pairs = [a, b]
                break
            }
        }
        let relation: Relation? = twoObjects ? Relation(rawValue: rng.int(below: 4))! : nil

        // Sizes and extents; a pair must fit side by side along the relation's axis:
        // margin + eA + separation + eB + margin ≤ S.
        var sizes: [(SizeClass, Float)] = []
        repeat {
            sizes = pairs.map { _ in
                let size = SizeClass(rawValue: rng.int(below: 2))!
                let f = size.extentFraction
                return (size, rng.uniform(f.lowerBound * s, f.upperBound * s))
            }
        } while twoObjects && sizes[0].1 + sizes[1].1 + 2 * margin + separation > s

        var objects: [SceneObject] = []
        for (pair, size) in zip(pairs, sizes) {
            let base = pair.color.rgb
            let j = ShapeColor.jitter
            let r = base.r + rng.uniform(-j, j)
            let g = base.g + rng.uniform(-j, j)
            let b = base.b + rng.uniform(-j, j)
            objects.append(SceneObject(shape: pair.shape, color: pair.color, size: size.0,
                                       centerX: 0, centerY: 0, extent: size.1, red: r, green: g, blue: b))
        }

        // Placement.
        var position: GridPosition?
        if let relation {
            placePair(&objects, relation: relation, canvas: s, using: &rng)
        } else {
            let p = GridPosition(rawValue: rng.int(below: 9))!
            position = p
            let h = objects[0].extent / 2
            let cell = s / 3
            objects[0].centerX = uniformInIntersection(Float(p.column) * cell, Float(p.column + 1) * cell,
                                                       margin + h, s - margin - h, using: &rng)
            objects[0].centerY = uniformInIntersection(Float(p.row) * cell, Float(p.row + 1) * cell,
                                                       margin + h, s - margin - h, using: &rng)
        }

        let templates = twoObjects ? ShapesTemplate.pair : ShapesTemplate.singleObject
        let template = templates[rng.int(below: templates.count)]
        let caption = ShapesCaption.make(objects: objects, position: position, relation: relation, template: template)
        return ShapesScene(objects: objects, position: position, relation: relation, template: template, caption: caption)
    }

    /// Places objects[0] `relation` objects[1]. Along the axis the pair is uniform over all
    /// placements that keep the margins and the separation; across it the first object's centre is
    /// uniform in its feasible range and the second's uniform within ±0.15 S of it (and feasible).
    static func placePair(_ objects: inout [SceneObject], relation: Relation, canvas s: Float,
                          using rng: inout RandomGenerator) {
        // Along the axis, "lead" is the object nearer the origin (left or top).
        let leadIndex = (relation == .leftOf || relation == .above) ? 0 : 1
        let lead = objects[leadIndex].extent, trail = objects[1 - leadIndex].extent
        // Free length to share between the lead's outer margin and the extra gap between the boxes;
        // (m, g) uniform on the triangle m, g ≥ 0, m + g ≤ slack.
        let slack = max(0, s - 2 * margin - separation - lead - trail)
        var u = rng.uniform(), v = rng.uniform()
        if u + v > 1 { (u, v) = (1 - u, 1 - v) }
        let leadCenter = margin + slack * u + lead / 2
        let trailCenter = leadCenter + lead / 2 + separation + slack * v + trail / 2

        let hA = objects[0].extent / 2, hB = objects[1].extent / 2
        let across = acrossTolerance * s
        let a = rng.uniform(margin + hA, s - margin - hA)
        let b = uniformInIntersection(a - across, a + across, margin + hB, s - margin - hB, using: &rng)

        if relation.isHorizontal {
            objects[leadIndex].centerX = leadCenter
            objects[1 - leadIndex].centerX = trailCenter
            objects[0].centerY = a
            objects[1].centerY = b
        } else {
            objects[leadIndex].centerY = leadCenter
            objects[1 - leadIndex].centerY = trailCenter
            objects[0].centerX = a
            objects[1].centerX = b
        }
    }

    /// Uniform in [lo1, hi1] ∩ [lo2, hi2] (which must not be empty).
    @inline(__always)
    static func uniformInIntersection(_ lo1: Float, _ hi1: Float, _ lo2: Float, _ hi2: Float,
                                      using rng: inout RandomGenerator) -> Float {
        let lo = max(lo1, lo2), hi = min(hi1, hi2)
        precondition(lo <= hi, "empty placement interval [\(lo1), \(hi1)] ∩ [\(lo2), \(hi2)]")
        return rng.uniform(lo, hi)
    }
}
