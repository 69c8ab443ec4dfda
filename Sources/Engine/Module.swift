/// A model component that owns parameters. Layers are small `final class`es conforming to this;
/// a model lists its own parameters and its children's under their field names, giving dotted
/// names such as `blocks.0.selfAttention.qkv.weight` (the keys of checkpoints).
public protocol Module: AnyObject {
    /// Calls `visit` once per parameter with its full dotted name (`prefix` + local name).
    func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void)
}

extension Module {
    /// Every parameter with its dotted name, in a fixed order.
    public var namedParameters: [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        visitParameters(prefix: "") { out.append((name: $0, tensor: $1)) }
        return out
    }

    public var parameters: [Tensor] { namedParameters.map(\.tensor) }

    /// Total number of scalar parameters.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.tensor.count } }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// A module made of other modules: it lists its children once, in checkpoint order, and their
/// parameters are visited from that list under the children's names.
public protocol CompositeModule: Module {
    var children: [ModuleChild] { get }
}

extension CompositeModule {
    public func visitParameters(prefix: String, _ visit: (String, Tensor) -> Void) {
        for child in children {
            for (name, module) in child.members { module.visitParameters(prefix: childPrefix(prefix, name), visit) }
        }
    }
}

/// One named child of a composite module: a single module (absent when nil) or a numbered list,
/// whose items are named `name.0`, `name.1`, ….
public struct ModuleChild {
    let members: [(String, any Module)]

    public static func one(_ name: String, _ module: (any Module)?) -> ModuleChild {
        ModuleChild(members: module.map { [(name, $0)] } ?? [])
    }

    public static func list<M: Module>(_ name: String, _ modules: [M]) -> ModuleChild {
        ModuleChild(members: modules.enumerated().map { ("\(name).\($0.offset)", $0.element) })
    }
}

/// Joins a prefix and a local name with a dot: `dotted("blocks.0.", "norm")` → `blocks.0.norm.`
/// for children, or use `prefix + "weight"` for a parameter.
@inline(__always)
public func childPrefix(_ prefix: String, _ child: String) -> String { prefix + child + "." }
