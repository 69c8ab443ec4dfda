import Testing
@testable import Experiments
@testable import VQDiffusion

@Suite struct ProgressTests {
    final class Output {
        var text = ""
        var time = 0.0
    }

    @Test func logModePrintsEveryTenPercentAndASummary() {
        let out = Output()
        let bar = ProgressBar(total: 200, label: "train", isTerminal: false,
                              write: { out.text += $0 }, clock: { out.time })
        for step in 1...200 {
            out.time += 0.5
            bar.update(step, ["loss": 1.0 / Double(step)])
        }
        bar.finish()
        let lines = out.text.split(separator: "\n")
        #expect(lines.count == 11)   // 10 %, 20 %, …, 100 %, then the summary
        #expect(lines[0].hasPrefix("train 20/200 (10%)"))
        #expect(lines[0].contains("2 it/s"))
        #expect(lines[0].contains("ETA 1m30s"))
        #expect(lines[0].contains("loss 0.05"))
        #expect(!out.text.contains("\r"))
        #expect(lines[10] == "train: 200/200 in 1m40s (2 it/s), loss 0.005")
    }

    @Test func logModeAlsoPrintsAfterALongSilence() {
        let out = Output()
        let bar = ProgressBar(total: 1000, isTerminal: false, write: { out.text += $0 }, clock: { out.time })
        bar.logInterval = 30
        out.time = 31
        bar.update(1)
        out.time = 32
        bar.update(2)
        #expect(out.text.split(separator: "\n").count == 1)
    }

    @Test func terminalModeRedrawsInPlaceAtALimitedRate() {
        let out = Output()
        let bar = ProgressBar(total: 100, label: "sample", isTerminal: true, write: { out.text += $0 }, clock: { out.time })
        bar.redrawInterval = 0.1
        for step in 1...100 {
            out.time += 0.01      // 100 updates over 1 s: about 10 redraws, plus the final one
            bar.update(step)
        }
        let draws = out.text.filter { $0 == "\r" }.count
        #expect(draws >= 9 && draws <= 12)
        #expect(!out.text.contains("\n"))
        #expect(out.text.contains("[########################] 100/100 (100%)"))
        bar.finish()
        #expect(out.text.hasSuffix("sample: 100/100 in 1.0s (100 it/s)\u{1B}[K\n"))
    }
}
