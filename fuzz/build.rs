//! As the root build.rs: libtorch's lib/ in the fuzz binaries' rpath (the
//! root package's link arguments reach only its own binaries).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
