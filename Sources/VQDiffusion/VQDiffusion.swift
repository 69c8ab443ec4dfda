import Engine

/// Facts about this build of the suite.
public enum VQDiffusionInfo {
    public static let version = "0.1.0"
}
