import Foundation
import Testing
@testable import VQDiffusion

@Suite struct DiffusionScheduleTests {
    @Test func everyTransitionRowIsADistribution() {
        for K in [1, 4, 512] {
            for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
                for t in 0...s.steps {
                    var mats = [s.cumulative(t)]
                    if t >= 1 { mats.append(s.oneStep(t)) }
                    for u in 0..<t { mats.append(s.transition(from: u, to: t)) }
                    for m in mats {
                        #expect(m.keep >= 0 && m.replace >= 0 && m.mask >= 0 && m.keep <= 1 && m.mask <= 1,
                                "\(name) K=\(K) t=\(t): \(m)")
                        let rowSum = m.keep + Double(K) * m.replace + m.mask
                        #expect(abs(rowSum - 1) < 1e-12, "\(name) K=\(K) t=\(t): row sums to \(rowSum)")
                    }
                }
                if K <= 4 {   // the dense rows too, [MASK] row included
                    let n = K + 1
                    for t in 1...s.steps {
                        for m in [s.oneStep(t).denseMatrix(), s.cumulative(t).denseMatrix()] {
                            for i in 0..<n {
                                let sum = (0..<n).reduce(0.0) { $0 + m[i * n + $1] }
                                #expect(abs(sum - 1) < 1e-12, "\(name) t=\(t) row \(i) sums to \(sum)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func cumulativeEqualsProductOfOneSteps() {
        for K in [4, 5] {
            for (name, s) in diffusionTestSchedules(classes: K, steps: 10) {
                for t in 1...s.steps {
                    let err = maxAbsDifference(denseSteps(s, from: 0, to: t), s.cumulative(t).denseMatrix())
                    #expect(err < 1e-12, "\(name) K=\(K) t=\(t): |Π Q_u − Q̄_t| = \(err)")
                }
            }
        }
    }

    @Test func transitionFromSEqualsProductOfStepsAfterS() {
        for (name, s) in diffusionTestSchedules(classes: 4, steps: 10) {
            for t in 1...s.steps {
                for u in 0..<t {
                    let err = maxAbsDifference(denseSteps(s, from: u, to: t), s.transition(from: u, to: t).denseMatrix())
                    #expect(err < 1e-12, "\(name) s=\(u) t=\(t): \(err)")
                    // composition in closed form agrees with the dense product as well
                    let composed = s.cumulative(u).then(s.transition(from: u, to: t))
                    #expect(maxAbsDifference(composed.denseMatrix(), s.cumulative(t).denseMatrix()) < 1e-12)
                }
            }
        }
    }

    @Test func presetsHaveThePapersEndPoints() throws {
        let K = 512
        let paper = try DiffusionSchedule(.paper(classes: K))
        #expect(paper.steps == 100)
        #expect(abs(paper.gammaBar[100] - 0.9) < 1e-15)
        #expect(abs(Double(K) * paper.betaBar[100] - (0.1 - 0.000009)) < 1e-12)
        #expect(abs(paper.alphaBar[1] - 0.99999) < 1e-15 && abs(paper.gammaBar[1] - 0.000009) < 1e-15)

        let reference = try DiffusionSchedule(.referenceMaskOnly(classes: K))
        for t in 1...100 { #expect(abs(Double(K) * reference.betaBar[t] - 1e-6) < 1e-12) }

        let replaceOnly = try DiffusionSchedule(DiffusionConfiguration(classes: K).withGammaFinal(0))
        #expect(replaceOnly.gammaBar.allSatisfy { $0 == 0 } && replaceOnly.gamma.allSatisfy { $0 == 0 })

        let maskOnly = try DiffusionSchedule(DiffusionConfiguration(classes: K).withGammaFinal(1))
        let gammaMax = 1 - 0.000009 - (0.000009 / 0.99999) * (1 - 0.99999 - 0.000009)
        #expect(abs(maskOnly.gammaBar[100] - gammaMax) < 1e-15)
        for t in 2...100 { #expect(Double(K) * maskOnly.beta[t] < 1e-14, "t=\(t): Kβ = \(Double(K) * maskOnly.beta[t])") }
    }

    /// Values of the released reference schedule (K = 512, T = 100), computed independently in
    /// Float64 from its published formula: (t, α_t, β_t, γ_t, ᾱ_t, β̄_t, γ̄_t).
    @Test func matchesReferenceScheduleValues() throws {
        let paper: [(Int, [Double])] = [
            (1, [0.99999, 1.953124999839323e-09, 9.000000000036756e-06, 0.99999, 1.9531249999111123e-09, 9e-06]),
            (2, [0.9898990808089899, 1.9726937326015707e-06, 0.009090899999918078, 0.9898891818181819, 1.9746093749999114e-06, 0.009099818181818183]),
            (50, [0.9803924994238224, 6.793939324947415e-06, 0.016129003641804474, 0.5050499090909091, 9.666210937500001e-05, 0.4454590909090909]),
            (100, [0.0008902237249155092, 0.0017886273570923382, 0.08333256944380729, 9.000000000036756e-06, 0.00019529492187499988, 0.9]),
        ]
        let maskOnly: [(Int, [Double])] = [
            (2, [0.9898990808089899, 1.9728535428573113e-11, 0.010100909089999943, 0.9898891818181819, 1.9531249999104737e-09, 0.010109818181818183]),
            (50, [0.9803924994238224, 7.433906897176545e-11, 0.019607462514574237, 0.5050499090909091, 1.9531250000561634e-09, 0.4949490909090909]),
            (100, [0.0008902237249155092, 1.9299983903728855e-07, 0.9990109603574974, 9.000000000036756e-06, 1.953124999839323e-09, 0.99999]),
        ]
        for (config, rows) in [(DiffusionConfiguration.paper(classes: 512), paper), (.referenceMaskOnly(classes: 512), maskOnly)] {
            let s = try DiffusionSchedule(config)
            for (t, v) in rows {
                let got = [s.alpha[t], s.beta[t], s.gamma[t], s.alphaBar[t], s.betaBar[t], s.gammaBar[t]]
                for (a, b) in zip(got, v) { #expect(abs(a - b) <= 1e-14 * abs(b), "t=\(t): \(a) vs \(b)") }
            }
        }
    }

    @Test func impossibleEndPointsThrowWithAMessage() {
        let bad: [DiffusionConfiguration] = [
            DiffusionConfiguration(classes: 0),
            DiffusionConfiguration(classes: 8, steps: 1),
            DiffusionConfiguration(classes: 8, alphaStart: 0.5, alphaEnd: 0.6),
            DiffusionConfiguration(classes: 8, gammaStart: 0.5, gammaEnd: 0.4),
            DiffusionConfiguration(classes: 8, gammaEnd: 1),                       // ᾱ_T + γ̄_T > 1
            DiffusionConfiguration(classes: 8, gammaEnd: 0.999995),                // would need β_t < 0
            DiffusionConfiguration(classes: 8, alphaStart: 1.5),
            DiffusionConfiguration(classes: 8, alphaStart: 0, alphaEnd: 0),
            DiffusionConfiguration(classes: 8, gammaEnd: .nan),
        ]
        for c in bad {
            do {
                _ = try DiffusionSchedule(c)
                Issue.record("accepted \(c)")
            } catch let e as DiffusionConfigurationError {
                #expect(!e.message.isEmpty)
            } catch { Issue.record("unexpected error \(error)") }
        }
        #expect(throws: DiffusionConfigurationError.self) { try DiffusionConfiguration(classes: 8).withGammaFinal(1.5) }
    }

    @Test func inspectJSONParsesWithTValuesPerArray() throws {
        let s = try DiffusionSchedule(.paper(classes: 16, steps: 37))
        let object = try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as? [String: Any]
        let o = try #require(object)
        let expected: [String: [Double]] = ["at": s.alpha, "bt": s.beta, "ct": s.gamma,
                                            "att": s.alphaBar, "btt": s.betaBar, "ctt": s.gammaBar]
        #expect(Set(o.keys) == Set(expected.keys))
        for (key, values) in expected {
            let array = try #require(o[key] as? [Double], "\(key) is not an array of numbers")
            #expect(array.count == 37)
            for (a, b) in zip(array, values[1...]) { #expect(abs(a - b) <= 1e-15 * abs(b), "\(key): \(a) vs \(b)") }
            // The printed digits themselves round-trip exactly (the platform JSON parser may not).
            let text = s.json()
            let start = try #require(text.range(of: "\"\(key)\":["))
            let body = text[start.upperBound...].prefix { $0 != "]" }
            #expect(body.split(separator: ",").map { Double(String($0))! } == Array(values[1...]))
        }
    }
}
