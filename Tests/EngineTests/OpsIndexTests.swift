import Testing
import Engine

extension OpsTests {
    @Suite struct OpsIndexTests {
        @Test func embeddingGathersRowsAndAccumulates() {
            let table = opsUniform([5, 3], seed: 1)
            let ids: [Int32] = [4, 0, 4, 2, 4, 1]
            let y = embedding(table, ids, shape: [2, 3])
            #expect(y.shape == [2, 3, 3])
            for (r, id) in ids.enumerated() {
                #expect(Array(y.values[(r * 3)..<(r * 3 + 3)]) == Array(table.values[(Int(id) * 3)..<(Int(id) * 3 + 3)]))
            }
            table.requiresGrad = true
            embedding(table, ids, shape: [2, 3]).sum().backward()
            // Row 4 appears three times, row 3 never.
            #expect(table.grad!.values == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3, 3, 3])
            #expect(gradientError([table.copy()]) { embedding($0[0], ids, shape: [6]) } < 1e-2)
        }

        @Test func gatherAndScatterAdd() {
            let x = opsUniform([2, 3, 4], seed: 2)
            let idx: [Int32] = [3, 0, 1, 2, 2, 0]
            let g = x.gather(indices: idx)
            #expect(g.shape == [2, 3])
            for r in 0..<6 { #expect(g.pointer[r] == x.pointer[r * 4 + Int(idx[r])]) }
            #expect(gradientError([x.copy()]) { $0[0].gather(axis: -1, indices: idx) } < 1e-2)

            let v = opsUniform([2, 3], seed: 3)
            let s = scatterAdd(into: [2, 3, 4], indices: idx, values: v)
            #expect(s.shape == [2, 3, 4])
            for i in 0..<24 {
                let (r, c) = (i / 4, i % 4)
                #expect(s.pointer[i] == (c == Int(idx[r]) ? v.pointer[r] : 0))
            }
            #expect(gradientError([v.copy()]) { scatterAdd(into: [2, 3, 4], axis: -1, indices: idx, values: $0[0]) } < 1e-2)
            // gather undoes scatterAdd.
            #expect(s.gather(indices: idx).values == v.values)
        }
    }
}
