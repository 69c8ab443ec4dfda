import CDNNL

/// Convolution on oneDNN: forward, backward data and backward weights, each a primitive created
/// once per geometry and precision and kept. The engine's tensors stay in plain layouts (NCHW
/// activations, OIHW weights, fp32); each primitive picks its own blocked layout (and bf16
/// operands with `.bf16`), and reorders convert the operands in and the results out, gradients
/// added into the caller's buffers by the reorder's sum post-op.
extension OneDNN {
    /// Which of a convolution's three products.
    enum ConvolutionPass: Hashable {
        case forward(bias: Bool)
        case backwardData
        case backwardWeights(bias: Bool)
    }

    struct ConvolutionKey: Hashable {
        var geometry: ConvGeometry
        var pass: ConvolutionPass
        var precision: Precision
    }

    /// One operand: the primitive's description of it, and the reorder from (inputs) or to
    /// (outputs) the caller's plain fp32 layout, nil when the two are the same.
    struct Operand {
        var argument: Int32
        var layout: dnnl_memory_desc_t
        var reorder: Reorder?
        var bytes: Int { var l = layout; return dnnl_memory_desc_get_size(&l) }
    }

    /// A convolution pass: its primitive, its inputs and its outputs.
    final class Convolution {
        let op: Primitive
        var inputs: [Operand] = []
        var outputs: [Operand] = []

        init(_ key: ConvolutionKey) {
            let g = key.geometry
            let low = key.precision == .bf16 ? dnnl_bf16 : dnnl_f32
            func described(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
                var md = dnnl_memory_desc_t(), dims = dims.map(Int64.init)
                OneDNN.check(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), &dims, type, tag), "describing a tensor")
                return md
            }
            let (xDims, wDims, yDims) = ([g.N, g.C, g.H, g.W], [g.O, g.C, g.kh, g.kw], [g.N, g.O, g.Ho, g.Wo])
            // The caller's layouts.
            let (xPlain, wPlain, yPlain) = (described(xDims, dnnl_f32, dnnl_nchw), described(wDims, dnnl_f32, dnnl_oihw),
                                            described(yDims, dnnl_f32, dnnl_nchw))
            let bPlain = described([g.O], dnnl_f32, dnnl_x)
            // What the primitive may choose: any layout, bf16 or fp32 operands, fp32 results.
            var (xAny, wAny, yAny) = (described(xDims, low, dnnl_format_tag_any), described(wDims, low, dnnl_format_tag_any),
                                      described(yDims, low, dnnl_format_tag_any))
            var (xOut, wOut, yOut) = (described(xDims, dnnl_f32, dnnl_format_tag_any), described(wDims, dnnl_f32, dnnl_format_tag_any),
                                      described(yDims, dnnl_f32, dnnl_format_tag_any))
            let bias = UnsafeMutablePointer<dnnl_memory_desc_t>.allocate(capacity: 1)
            bias.initialize(to: bPlain)
            defer { bias.deallocate() }
            var strides: [Int64] = [Int64(g.stride), Int64(g.stride)]
            var padding: [Int64] = [Int64(g.padding), Int64(g.padding)]
            let attr = OneDNN.attributes()
            defer { dnnl_primitive_attr_destroy(attr) }

            // The primitive descriptor of `desc` (the caller destroys it); backward passes need the
            // forward one as a hint.
            func created(_ desc: inout dnnl_convolution_desc_t, hint: dnnl_primitive_desc_t?, _ what: String) -> dnnl_primitive_desc_t {
                var pd: dnnl_primitive_desc_t?
                OneDNN.check(dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, hint), "creating a \(what)")
                return pd!
            }
            func forwardDescriptor(withBias: Bool) -> dnnl_primitive_desc_t {
                var desc = dnnl_convolution_desc_t()
                OneDNN.check(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct,
                                                                 &xAny, &wAny, withBias ? UnsafePointer(bias) : nil, &yOut,
                                                                 &strides, &padding, &padding), "describing a convolution")
                return created(&desc, hint: nil, "convolution")
            }
            func input(_ argument: Int32, _ plain: dnnl_memory_desc_t, _ pd: dnnl_primitive_desc_t, _ query: dnnl_query_t,
                       index: Int32 = 0) -> Operand {
                var layout = Primitive.query(pd, query, index: index), plainCopy = plain
                let same = dnnl_memory_desc_equal(&layout, &plainCopy) != 0
                return Operand(argument: argument, layout: layout, reorder: same ? nil : Reorder(from: plain, to: layout, accumulate: false))
            }
            // Outputs always go through a reorder that adds into the caller's buffer (gradients
            // accumulate), except the forward output, which is overwritten.
            func output(_ argument: Int32, _ plain: dnnl_memory_desc_t, _ pd: dnnl_primitive_desc_t, _ query: dnnl_query_t,
                        index: Int32 = 0, accumulate: Bool) -> Operand {
                var layout = Primitive.query(pd, query, index: index), plainCopy = plain
                let same = dnnl_memory_desc_equal(&layout, &plainCopy) != 0 && !accumulate
                return Operand(argument: argument, layout: layout, reorder: same ? nil : Reorder(from: layout, to: plain, accumulate: accumulate))
            }

            switch key.pass {
            case .forward(let withBias):
                let pd = forwardDescriptor(withBias: withBias)
                defer { dnnl_primitive_desc_destroy(pd) }
                op = Primitive(pd, "convolution")
                inputs = [input(DNNL_ARG_SRC, xPlain, pd, dnnl_query_src_md), input(DNNL_ARG_WEIGHTS, wPlain, pd, dnnl_query_weights_md)]
                if withBias { inputs.append(input(DNNL_ARG_BIAS, bPlain, pd, dnnl_query_weights_md, index: 1)) }
                outputs = [output(DNNL_ARG_DST, yPlain, pd, dnnl_query_dst_md, accumulate: false)]
            case .backwardData:
                let hint = forwardDescriptor(withBias: false)
                defer { dnnl_primitive_desc_destroy(hint) }
                var desc = dnnl_convolution_desc_t()
                OneDNN.check(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &xOut, &wAny, &yAny,
                                                                       &strides, &padding, &padding), "describing a convolution's backward")
                let pd = created(&desc, hint: hint, "convolution backward (data)")
                defer { dnnl_primitive_desc_destroy(pd) }
                op = Primitive(pd, "convolution backward (data)")
                inputs = [input(DNNL_ARG_DIFF_DST, yPlain, pd, dnnl_query_diff_dst_md), input(DNNL_ARG_WEIGHTS, wPlain, pd, dnnl_query_weights_md)]
                outputs = [output(DNNL_ARG_DIFF_SRC, xPlain, pd, dnnl_query_diff_src_md, accumulate: true)]
            case .backwardWeights(let withBias):
                let hint = forwardDescriptor(withBias: withBias)
                defer { dnnl_primitive_desc_destroy(hint) }
                var desc = dnnl_convolution_desc_t()
                OneDNN.check(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &xAny, &wOut,
                                                                          withBias ? UnsafePointer(bias) : nil, &yAny,
                                                                          &strides, &padding, &padding),
                             "describing a convolution's weight gradient")
                let pd = created(&desc, hint: hint, "convolution backward (weights)")
                defer { dnnl_primitive_desc_destroy(pd) }
                op = Primitive(pd, "convolution backward (weights)")
                inputs = [input(DNNL_ARG_SRC, xPlain, pd, dnnl_query_src_md), input(DNNL_ARG_DIFF_DST, yPlain, pd, dnnl_query_diff_dst_md)]
                outputs = [output(DNNL_ARG_DIFF_WEIGHTS, wPlain, pd, dnnl_query_diff_weights_md, accumulate: true)]
                if withBias {
                    outputs.append(output(DNNL_ARG_DIFF_BIAS, bPlain, pd, dnnl_query_diff_weights_md, index: 1, accumulate: true))
                }
            }
            _ = (xOut, wOut, yAny)   // described for the passes that use them
        }

        /// Runs the pass on the caller's buffers, given in the order of `inputs` and `outputs`.
        func run(inputs given: [UnsafeRawPointer], outputs taken: [UnsafeMutablePointer<Float>]) {
            var staged: [UnsafeMutableRawPointer] = []
            defer { for p in staged { p.deallocate() } }
            func stage(_ operand: Operand) -> UnsafeMutableRawPointer {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(operand.bytes, 1), alignment: 64)
                staged.append(p)
                return p
            }
            var arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)] = []
            for (operand, pointer) in zip(inputs, given) {
                let source = UnsafeMutableRawPointer(mutating: pointer)
                if let reorder = operand.reorder {
                    let target = stage(operand)
                    reorder.run(source, target)
                    arguments.append((operand.argument, operand.layout, target))
                } else {
                    arguments.append((operand.argument, operand.layout, source))
                }
            }
            var pending: [(Reorder, UnsafeMutableRawPointer, UnsafeMutableRawPointer)] = []
            for (operand, pointer) in zip(outputs, taken) {
                if let reorder = operand.reorder {
                    let result = stage(operand)
                    arguments.append((operand.argument, operand.layout, result))
                    pending.append((reorder, result, UnsafeMutableRawPointer(pointer)))
                } else {
                    arguments.append((operand.argument, operand.layout, UnsafeMutableRawPointer(pointer)))
                }
            }
            op.run(arguments, "convolution")
            for (reorder, result, target) in pending { reorder.run(result, target) }
        }
    }

    private static let convolutions = Cache<ConvolutionKey, Convolution>()

    static func convolution(_ g: ConvGeometry, _ pass: ConvolutionPass, _ precision: Precision) -> Convolution {
        convolutions.get(ConvolutionKey(geometry: g, pass: pass, precision: precision)) { Convolution($0) }
    }

    /// out (N, O, Ho, Wo) = conv(x, weight) + bias, as `conv2dForward`.
    public static func convolutionForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                          _ g: ConvGeometry, precision: Precision) {
        let conv = convolution(g, .forward(bias: bias != nil), precision)
        conv.run(inputs: [UnsafeRawPointer(x), UnsafeRawPointer(weight)] + (bias.map { [UnsafeRawPointer($0)] } ?? []),
                 outputs: [out])
    }

    /// dx += ∂/∂x, dweight += ∂/∂weight, dbias += ∂/∂bias (each when not nil), as `conv2dBackward`.
    public static func convolutionBackward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                           x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                           _ g: ConvGeometry, precision: Precision) {
        if let dx {
            convolution(g, .backwardData, precision)
                .run(inputs: [UnsafeRawPointer(dout), UnsafeRawPointer(weight)], outputs: [dx])
        }
        if let dweight {
            convolution(g, .backwardWeights(bias: dbias != nil), precision)
                .run(inputs: [UnsafeRawPointer(x), UnsafeRawPointer(dout)], outputs: [dweight] + (dbias.map { [$0] } ?? []))
        } else if let dbias {
            // Only the bias gradient: Σ over images and positions of dY.
            let P = g.P
            for n in 0..<g.N { for o in 0..<g.O { dbias[o] += FastMath.sum(dout + (n * g.O + o) * P, P) } }
        }
    }
}
