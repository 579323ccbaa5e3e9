"""Türkçe: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Ana içeriğe geç',
    'Language':
        'Dil',
    'Tax-free form status':
        'Tax-free formu durumu',
    'Export deadline':
        'İhracat son tarihi',
    'Form number':
        'Form numarası',
    'Next step':
        'Sonraki adım',
    'Check another form':
        'Başka bir formu sorgula',
    'Check your tax-free form':
        'Tax-free formunuzu sorgulayın',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'QR kodun yanında yazan form numarasını ve pasaportunuzdaki soyadınızı girin.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 harf ve rakam, örneğin NL 7K3Q W9XD',
    'Last name':
        'Soyadı',
    'Show status':
        'Durumu göster',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        "Formunuzu AB'deki son havalimanınızda veya limanınızda, bagajınızı teslim etmeden önce onaylatın.",
    'Not validated yet':
        'Henüz onaylanmadı',
    'Customs check needed':
        'Gümrük kontrolü gerekli',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'Bagajınızı teslim etmeden önce eşyalarınız, pasaportunuz ve bu formla gümrük masasına gidin.',
    'Export validated':
        'İhracat onaylandı',
    'Export validated for part of your goods':
        'Eşyalarınızın bir kısmı için ihracat onaylandı',
    'Your refund will be paid by {payer}.':
        'İadenizi {payer} ödeyecek.',
    'Refund paid':
        'İade ödendi',
    'Nothing more to do. Have a good trip!':
        'Yapmanız gereken başka bir şey yok. İyi yolculuklar!',
    'Export refused by customs':
        'İhracat gümrük tarafından reddedildi',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Bu form artık onaylanamaz. Sorularınız için mağazaya başvurun.',
    'Form cancelled by the shop':
        'Form mağaza tarafından iptal edildi',
    'This form cannot be used. Ask the shop if you have questions.':
        'Bu form kullanılamaz. Sorularınız için mağazaya başvurun.',
    'Export deadline passed':
        'İhracat süresi doldu',
    'This form can no longer be validated.':
        'Bu form artık onaylanamaz.',
    'Fill this in.':
        'Bu alanı doldurun.',
    'This is not a valid form number. Check it on your form.':
        'Bu geçerli bir form numarası değil. Formunuzdan kontrol edin.',
    'Too many attempts. Wait a minute and try again.':
        'Çok fazla deneme. Bir dakika bekleyip tekrar deneyin.',
    'We found no form with this number and last name.':
        'Bu numara ve soyadıyla eşleşen bir form bulunamadı.',
    'This page was open for a long time. Please send it again.':
        'Bu sayfa uzun süre açık kaldı. Lütfen tekrar gönderin.',
    'Go to the start page':
        'Başlangıç sayfasına git',
}
