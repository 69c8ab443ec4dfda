import Testing
@testable import VQDiffusion

@Test func versionIsSemantic() {
    #expect(VQDiffusionInfo.version.split(separator: ".").count == 3)
}
