//! Writes the busybox test image (an OCI layout tarball from Debian's busybox-static) for
//! `keelson image import`: build-busybox-image OUT.tar NAME
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(name)) = (args.next(), args.next()) else {
        return Err("usage: build-busybox-image OUT.tar NAME".into());
    };
    let out = std::path::PathBuf::from(out);
    let dir = tempfile::tempdir()?;
    let built = keelson_kubelet::runtime::image::build_busybox_image(dir.path(), &name)?;
    std::fs::copy(built, &out)?;
    println!("wrote {} ({name})", out.display());
    Ok(())
}
